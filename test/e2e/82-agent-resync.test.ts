// Drift raises no event: a flushed nodenet chain or a deleted jump is repaired by the next periodic
// resync (RESYNC_PERIOD=2s here), and nothing else in the table is touched.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { CoreV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

import { applyAgentRbac, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { makeNetns } from '../helpers/netns.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import { iptables, iptablesSave } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const strip = (save: string) => save.replace(/^:(\S+) (\S+) \[\d+:\d+\]$/gm, ':$1 $2');

t.test('a flushed chain and a deleted jump come back at the next resync', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.40' }]);
  // Someone else's rule, which the repair must leave alone.
  await iptables(node.netns, 'ipv4', ['-t', 'nat', '-A', 'PREROUTING', '-d', '198.51.100.1/32', '-j', 'ACCEPT']);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' } });
  await agent.ready();
  const nat = strip(await iptablesSave(node.netns, 'ipv4', 'nat'));
  const filter = strip(await iptablesSave(node.netns, 'ipv4', 'filter'));
  t.match(nat, /^-A NODENET-EXTERNAL-PODS .*-d 203\.0\.113\.40\/32/m);
  t.match(filter, /^-A INPUT .*-j NODENET-DROP-INVALID$/m);

  const commits = await agent.metric('nodenet_netfilter_commits_total');
  await iptables(node.netns, 'ipv4', ['-t', 'nat', '-F', 'NODENET-EXTERNAL-PODS']);
  t.notMatch(await iptablesSave(node.netns, 'ipv4', 'nat'), /^-A NODENET-EXTERNAL-PODS/m, 'flushed');
  await eventually(async () => {
    if (strip(await iptablesSave(node.netns, 'ipv4', 'nat')) !== nat) throw new Error('nat not repaired yet');
  }, 15_000);
  t.pass('the flushed chain is back, the nat table exactly as before');

  await iptables(node.netns, 'ipv4', ['-t', 'filter', '-D', 'INPUT', '1']);
  t.notMatch(await iptablesSave(node.netns, 'ipv4', 'filter'), /-j NODENET-DROP-INVALID$/m, 'jump deleted');
  await eventually(async () => {
    if (strip(await iptablesSave(node.netns, 'ipv4', 'filter')) !== filter) throw new Error('filter not repaired yet');
  }, 15_000);
  t.pass('the jump is back, first in INPUT');
  t.equal(await agent.metric('nodenet_netfilter_commits_total'), commits + 2, 'one commit per repair, none otherwise');
  t.ok(
    agent.logs().some((l) => l.msg.startsWith('committed ipv4 nat') && String(l.changes).includes('NODENET-EXTERNAL-PODS')),
    'the repair is logged with what changed',
  );
});

// Last in this file: it stops the file's API server for good, so its objects are made without the
// fixture, whose teardown would need the API server; the cluster goes with the file.
t.test('with the API server gone, rules stay and drift is still repaired from the cache', async (t) => {
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const node = { netns: await makeNetns(t), name: 'node-without-api' };
  await core.createNode({ body: { metadata: { name: node.name }, spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] } } });
  await core.createNamespacedService({
    namespace: 'default',
    body: { metadata: { name: 'web' }, spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
  });
  await core.patchNamespacedServiceStatus(
    { name: 'web', namespace: 'default', body: { status: { loadBalancer: { ingress: [{ ip: '203.0.113.41' }] } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' } });
  await agent.ready();
  const nat = strip(await iptablesSave(node.netns, 'ipv4', 'nat'));
  t.match(nat, /-d 203\.0\.113\.41\/32/);

  process.kill(Number(readFileSync(join(cluster.stateDir, 'kube-apiserver.pid'), 'utf8')), 'SIGKILL');
  await agent.waitForLog((l) => typeof l.informer === 'string' && typeof l.retryInMs === 'number' && !String(l.error).startsWith('HTTP'));
  t.pass('the informers noticed and retry');
  await iptables(node.netns, 'ipv4', ['-t', 'nat', '-F', 'NODENET-EXTERNAL-PODS']);
  await eventually(async () => {
    if (strip(await iptablesSave(node.netns, 'ipv4', 'nat')) !== nat) throw new Error('nat not repaired yet');
  }, 15_000);
  t.pass('the next resync repaired the chain from the cached Services');
  const reconciles = agent.logs().filter((l) => l.msg === 'reconciled').length;
  await eventually(async () => {
    if (agent.logs().filter((l) => l.msg === 'reconciled').length < reconciles + 2) throw new Error('waiting for resyncs');
  }, 15_000);
  t.equal(strip(await iptablesSave(node.netns, 'ipv4', 'nat')), nat, 'resyncs without the API server change nothing');
  t.equal((await agent.get('/readyz')).status, 200, 'still ready: the cache is complete and applies succeed');
});
