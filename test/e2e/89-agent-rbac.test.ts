// deploy/ as the API server sees it: the manifests pass a server-side dry run; the agent's
// ClusterRole is enough for it (every other e2e file runs the agent as that ServiceAccount) and
// grants nothing more; an agent without its RBAC waits unready, retrying, and recovers once granted.
import { join } from 'node:path';

import t from 'tap';

import { applyAgentRbac, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { eventually, kubeFixture } from '../helpers/kube.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);
// The overlay resources must exist for `auth can-i` to say anything about them.
await cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy', 'crds')]);
await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/links.nodenet.io', 'crd/nodenetworkstatuses.nodenet.io']);

const SA = 'system:serviceaccount:kube-system:nodenet';

t.test('kubectl apply --dry-run=server -f deploy/ passes', async (t) => {
  const out = await cluster.kubectl(['apply', '--dry-run=server', '-f', join(repoRoot, 'deploy')]);
  const lines = out.trim().split('\n');
  t.equal(lines.filter((l) => l === 'daemonset.apps/nodenet created (server dry run)').length, 2, 'both DaemonSets are valid');
  t.ok(lines.some((l) => l.startsWith('clusterrole.rbac.authorization.k8s.io/nodenet ')), 'and the RBAC');
  const json = JSON.parse(await cluster.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', join(repoRoot, 'deploy', 'daemonset-ipvs.yaml')])) as {
    spec: { template: { spec: { priorityClassName?: string; containers: Array<{ env: Array<{ name: string; value?: string }> }> } } };
  };
  const priority = json.spec.template.spec.priorityClassName!;
  t.match(await cluster.kubectl(['get', 'priorityclass', priority, '-o', 'name']), `priorityclass.scheduling.k8s.io/${priority}`, 'its priority class exists in every cluster');
  t.match(json.spec.template.spec.containers[0]!.env, [{ name: 'NODE_NAME' }, { name: 'PROXY_MODE', value: 'ipvs' }, { name: 'RULE_EXTERNAL_CLUSTER_ENABLE', value: 'true' }]);
});

t.test('the ClusterRole grants what the agent uses and nothing more', async (t) => {
  const can = async (verb: string, resource: string, extra: string[] = []) =>
    (await cluster.kubectlAllowingFailure(['auth', 'can-i', verb, resource, `--as=${SA}`, ...extra])).stdout.trim();
  const allowed: Array<[string, string, string[]?]> = [
    ['list', 'services', ['--all-namespaces']],
    ['watch', 'services', ['--all-namespaces']],
    ['get', 'nodes'],
    ['list', 'nodes'],
    ['watch', 'nodes'],
    ['list', 'endpointslices.discovery.k8s.io', ['--all-namespaces']],
    ['watch', 'endpointslices.discovery.k8s.io', ['--all-namespaces']],
    ['list', 'pods', ['--all-namespaces']],
    ['watch', 'pods', ['--all-namespaces']],
    ['list', 'namespaces'],
    ['watch', 'namespaces'],
    ['list', 'links.nodenet.io'],
    ['watch', 'links.nodenet.io'],
    ['create', 'nodenetworkstatuses.nodenet.io'],
    ['patch', 'nodenetworkstatuses.nodenet.io', ['--subresource=status']],
    ['create', 'events', ['-n', 'default']],
    ['patch', 'events', ['-n', 'default']],
  ];
  for (const [verb, resource, extra] of allowed) t.equal(await can(verb, resource, extra), 'yes', `${verb} ${resource}`);
  const denied: Array<[string, string, string[]?]> = [
    ['get', 'secrets', ['-n', 'kube-system']],
    ['patch', 'pods', ['-n', 'default']],
    ['delete', 'pods', ['-n', 'default']],
    ['create', 'pods/exec', ['-n', 'default']],
    ['patch', 'namespaces'],
    ['update', 'links.nodenet.io'],
    ['delete', 'nodenetworkstatuses.nodenet.io'],
    ['patch', 'nodenetworkstatuses.nodenet.io'],
    ['create', 'services', ['-n', 'default']],
    ['update', 'services', ['-n', 'default']],
    ['patch', 'services/status', ['-n', 'default']],
    ['update', 'nodes'],
    ['patch', 'nodes'],
    ['delete', 'events', ['-n', 'default']],
    ['list', 'events', ['-n', 'default']],
    ['create', 'endpointslices.discovery.k8s.io', ['-n', 'default']],
    ['list', 'configmaps', ['-n', 'kube-system']],
  ];
  for (const [verb, resource, extra] of denied) t.equal(await can(verb, resource, extra), 'no', `not ${verb} ${resource}`);

  // And a real request as the ServiceAccount is refused.
  const sa = cluster.kubeconfigFileAs({ serviceAccount: { namespace: 'kube-system', name: 'nodenet' } });
  const refused = await cluster.kubectlAllowingFailure(['--kubeconfig', sa, 'get', 'secrets', '-n', 'kube-system']);
  t.not(refused.code, 0);
  t.match(refused.stderr, `secrets is forbidden: User "${SA}" cannot list resource "secrets"`);
});

t.test('without RBAC the agent stays unready and retries; granted, it becomes ready', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const name = `nodenet-late-${k.namespace}`.slice(0, 60);
  const kubeconfig = cluster.kubeconfigFileAs({ serviceAccount: { namespace: 'kube-system', name } });
  const agent = await startAgent(t, { cluster, netns: node.netns, kubeconfig, env: { NODE_NAME: node.name } });
  await agent.waitForLog((l) => l.informer === 'services' && String(l.error).startsWith('HTTP 403'));
  const unready = await agent.get('/readyz');
  t.equal(unready.status, 503);
  t.match(unready.body, /informers not synced: services \(HTTP 403 Forbidden/);
  t.equal((await agent.get('/healthz')).status, 200, 'alive: waiting for RBAC is not a crash');
  t.notMatch(await node.netns.exec('cat', ['/proc/net/ip_tables_names']), /filter/, 'nothing applied before every informer synced');

  t.teardown(() => cluster.kubectlAllowingFailure(['delete', 'clusterrolebinding', name]));
  await cluster.kubectl(['create', 'clusterrolebinding', name, '--clusterrole=nodenet', `--serviceaccount=kube-system:${name}`]);
  await agent.ready(40_000);
  t.ok((await agent.metric('nodenet_informer_restarts_total', { informer: 'services' })) >= 1, 'the informer was restarted');
  await eventually(async () => {
    if (!(await node.netns.exec('iptables-legacy-save', ['-t', 'filter'])).includes('NODENET-DROP-INVALID')) throw new Error('not applied');
  });
  t.pass('and the rules are applied');
});
