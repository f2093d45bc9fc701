// Per-node status without write storms, on the real API server and as the agent's ServiceAccount:
// three writers (one per node) each report 100 different condition sets concurrently; exactly
// three NodeNetworkStatus objects exist afterwards, each holding its writer's last conditions and
// owned by its Node. Reporting the same conditions again writes nothing, and lastTransitionTime
// moves only when a condition's status does.
import { join } from 'node:path';

import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import t from 'tap';

import { NodeStatusWriter, type LinkCondition } from '../../lib/controller/overlays/status.js';
import { agentKubeconfig, applyAgentRbac } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { kubeFixture } from '../helpers/kube.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);
await cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy', 'crds')]);
await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/nodenetworkstatuses.nodenet.io']);

const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const GROUP = { group: 'nodenet.io', version: 'v1alpha1', plural: 'nodenetworkstatuses' };

interface StatusObject {
  metadata: { name: string; ownerReferences?: Array<{ kind: string; name: string; uid: string }> };
  status?: { summary?: string; links?: Array<{ name: string; conditions: Array<{ status: string; reason: string; message: string; observedGeneration: number; lastTransitionTime: string }> }> };
}

function conditions(round: number): LinkCondition[] {
  return ['bridge', 'vxlan'].map((link, i) => ({
    link,
    interfaceName: `if-${link}`,
    ok: (round + i) % 3 !== 0,
    reason: (round + i) % 3 !== 0 ? 'Ready' : 'KernelError',
    message: `round ${round}`,
    observedGeneration: round,
  }));
}

t.test('three writers, 100 rounds each: three objects, each with its last conditions', async (t) => {
  const k = await kubeFixture(t, cluster);
  const names = [1, 2, 3].map((n) => `st${n}-${k.namespace}`.slice(0, 60));
  const nodes = await Promise.all(names.map((name) => k.createNode({ name, internalIPs: ['192.0.2.1'] })));
  t.teardown(async () => {
    for (const name of names) await custom.deleteClusterCustomObject({ ...GROUP, name }).catch(() => undefined);
  });
  const kc = new KubeConfig();
  kc.loadFromFile(agentKubeconfig(cluster));
  const log = pino({ level: 'silent' });
  const writers = names.map((name) => new NodeStatusWriter(kc, name, log));

  const writes = await Promise.all(
    writers.map(async (w, i) => {
      let wrote = 0;
      for (let round = 1; round <= 100; round++) if (await w.write(conditions(round + i), nodes[i])) wrote++;
      return wrote;
    }),
  );
  t.same(writes, [100, 100, 100], 'every round said something new and was written');

  const all = (await custom.listClusterCustomObject({ ...GROUP })) as { items: StatusObject[] };
  const ours = all.items.filter((o) => names.includes(o.metadata.name));
  t.equal(ours.length, 3, 'exactly three status objects');
  for (const [i, name] of names.entries()) {
    const o = ours.find((x) => x.metadata.name === name)!;
    const last = conditions(100 + i);
    t.match(o.metadata.ownerReferences, [{ kind: 'Node', name, uid: nodes[i]!.metadata!.uid }], `${name} is owned by its Node`);
    t.same(
      o.status!.links!.map((l) => ({ name: l.name, status: l.conditions[0]!.status, reason: l.conditions[0]!.reason, message: l.conditions[0]!.message, observedGeneration: l.conditions[0]!.observedGeneration })),
      last.map((c) => ({ name: c.link, status: c.ok ? 'True' : 'False', reason: c.reason, message: c.message, observedGeneration: c.observedGeneration })),
      `${name} holds its writer's last round`,
    );
    t.equal(o.status!.summary, `${last.filter((c) => c.ok).length}/2 ready`);
  }

  t.equal(await writers[0]!.write(conditions(100), nodes[0]), false, 'the same conditions again: no write');
});

t.test('lastTransitionTime moves only when the status does', async (t) => {
  const k = await kubeFixture(t, cluster);
  const name = `tr-${k.namespace}`.slice(0, 60);
  const node = await k.createNode({ name, internalIPs: ['192.0.2.1'] });
  t.teardown(() => custom.deleteClusterCustomObject({ ...GROUP, name }).catch(() => undefined));
  const writer = new NodeStatusWriter(cluster.kc, name, pino({ level: 'silent' }));
  const read = async () => ((await custom.getClusterCustomObject({ ...GROUP, name })) as StatusObject).status!.links![0]!.conditions[0]!;
  const base: LinkCondition = { link: 'l', interfaceName: 'br0', ok: true, reason: 'Ready', message: '', observedGeneration: 1 };

  await writer.write([base], node);
  const first = await read();
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await writer.write([{ ...base, message: 'MTU warning', observedGeneration: 2 }], node);
  const second = await read();
  t.equal(second.message, 'MTU warning');
  t.equal(second.lastTransitionTime, first.lastTransitionTime, 'same status: the transition time stays');
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await writer.write([{ ...base, ok: false, reason: 'KernelError', message: 'EBUSY' }], node);
  const third = await read();
  t.equal(third.status, 'False');
  t.not(third.lastTransitionTime, first.lastTransitionTime, 'a new status: a new transition time');
});
