// deploy/samples agree with themselves and with the model: the Links plan a bridge and a VXLAN on
// the labelled nodes, and the NetworkAttachmentDefinition puts pods on that very bridge with the
// MTU the VXLAN gets, scheduling the example pod where the overlay exists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { loadAllYaml } from '@kubernetes/client-node';
import t from 'tap';

import { desiredOverlay, selects } from '../../lib/model/overlays/desired.js';
import type { LinkResource } from '../../lib/model/overlays/types.js';
import { repoRoot } from '../helpers/dist.js';

const links = loadAllYaml(readFileSync(join(repoRoot, 'deploy/samples/overlay-links.yaml'), 'utf8')) as LinkResource[];
const nadDocs = loadAllYaml(readFileSync(join(repoRoot, 'deploy/samples/overlay-nad.yaml'), 'utf8')) as Array<{ kind: string; spec: Record<string, unknown>; metadata: { name: string; annotations?: Record<string, string> } }>;

t.test('the sample plans one overlay per labelled node', async (t) => {
  const labels = { 'nodenet.io/overlay': 'demo' };
  const nodes = [
    { name: 'node-a', labels, internalIPs: ['10.0.0.1'] },
    { name: 'node-b', labels, internalIPs: ['10.0.0.2'] },
    { name: 'node-c', labels: {}, internalIPs: ['10.0.0.3'] },
  ];
  const plan = desiredOverlay({ node: nodes[0]!, nodes, links, facts: { mtus: { eth0: 1500 } } });
  t.ok(plan.verdicts.every((v) => v.ok), JSON.stringify(plan.verdicts));
  t.same(plan.links.map((l) => [l.kind, l.interfaceName]), [['bridge', 'br-overlay'], ['device', 'eth0'], ['vxlan', 'vx-overlay']]);
  t.same(plan.links.find((l) => l.kind === 'vxlan')?.vxlan?.meshPeers, ['10.0.0.2'], 'the unlabelled node is not in the mesh');

  const nad = nadDocs.find((d) => d.kind === 'NetworkAttachmentDefinition')!;
  const cni = JSON.parse(nad.spec.config as string) as { type: string; bridge: string; mtu: number; ipam: { type: string } };
  t.equal(cni.type, 'bridge');
  t.equal(cni.bridge, plan.links.find((l) => l.kind === 'bridge')!.interfaceName, 'the NAD names the bridge the Links make');
  t.equal(cni.mtu, plan.links.find((l) => l.kind === 'vxlan')!.mtu, "the pods' MTU is the VXLAN's");
  t.equal(cni.ipam.type, 'whereabouts', 'cluster-wide IPAM: host-local would repeat addresses across nodes');

  const pod = nadDocs.find((d) => d.kind === 'Pod')!;
  t.equal(pod.metadata.annotations?.['k8s.v1.cni.cncf.io/networks'], nad.metadata.name);
  t.ok(selects(links[1]!.spec.nodeSelector, pod.spec.nodeSelector as Record<string, string>), 'the pod is scheduled where the bridge is');
});
