// Every plain manifest under deploy/ (the chart and the kustomizations have their own renderings in
// 95) passes the real API server's admission with `kubectl apply --dry-run=server`: the CRDs first,
// then each file on its own, so a file that leans on another one's objects fails here. A new file
// is covered without touching this test; one the server refuses fails it with the server's words.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import t from 'tap';

import { loadAllYaml } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';

const deploy = join(repoRoot, 'deploy');
const cluster = await startCluster(t);

/** Every .yaml below `dir`, except the packaging folders that 95 renders. */
function plainManifests(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return ['helm', 'kustomize'].includes(relative(deploy, path)) ? [] : plainManifests(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

// Multus's NetworkAttachmentDefinition kind, which deploy/samples/overlay-nad.yaml uses: the
// structure of the CRD Multus installs (group k8s.cni.cncf.io, v1, a `config` string), so the
// sample is checked as a cluster with Multus would check it.
const networkAttachmentDefinitionCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'network-attachment-definitions.k8s.cni.cncf.io' },
  spec: {
    group: 'k8s.cni.cncf.io',
    scope: 'Namespaced',
    names: { plural: 'network-attachment-definitions', singular: 'network-attachment-definition', kind: 'NetworkAttachmentDefinition', shortNames: ['net-attach-def'] },
    versions: [{
      name: 'v1', served: true, storage: true,
      schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { config: { type: 'string' } } } } } },
    }],
  },
};

const files = plainManifests(deploy);

t.test('deploy/ holds the manifests this test is meant to cover', async (t) => {
  const names = files.map((f) => relative(deploy, f));
  for (const expected of ['rbac.yaml', 'daemonset-iptables.yaml', 'daemonset-ipvs.yaml', 'crds/links.nodenet.io.yaml', 'samples/overlay-links.yaml', 'samples/overlay-nad.yaml']) {
    t.ok(names.includes(expected), expected);
  }
});

t.test('every plain manifest passes the server dry run, object by object', async (t) => {
  await cluster.kubectl(['apply', '-f', join(deploy, 'crds')]);
  await cluster.kubectl(['apply', '-f', '-'], JSON.stringify(networkAttachmentDefinitionCrd));
  await cluster.kubectl(['wait', '--for', 'condition=established', '--timeout=60s', 'crd/links.nodenet.io', 'crd/nodenetworkstatuses.nodenet.io', 'crd/network-attachment-definitions.k8s.cni.cncf.io']);
  for (const file of files) {
    const objects = loadAllYaml(readFileSync(file, 'utf8')).filter(Boolean) as Array<{ kind: string; metadata: { name: string } }>;
    t.ok(objects.length > 0, `${relative(deploy, file)} holds objects`);
    const result = await cluster.kubectlAllowingFailure(['apply', '--dry-run=server', '-f', file]);
    t.equal(result.code, 0, `${relative(deploy, file)}: ${result.stderr.trim()}`);
    const lines = result.stdout.trim().split('\n');
    // One "(server dry run)" line per object: none was skipped or merged away.
    t.equal(lines.filter((l) => / \(server dry run\)$/.test(l)).length, objects.length, `${relative(deploy, file)}: every object admitted`);
  }
});
