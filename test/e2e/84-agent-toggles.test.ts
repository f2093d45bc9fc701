// Turning a fix off removes its chains and jumps; a fix that is off and whose chain does not exist
// is no error (network-node-manager #19 crash-looped deleting a chain that was never created).
import t from 'tap';

import { applyAgentRbac, lockFileFor, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import { iptablesSave, legacyTableNames } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const ALL_OFF = { RULE_DROP_INVALID_INPUT_ENABLE: 'false', RULE_EXTERNAL_CLUSTER_ENABLE: 'false', RULE_NOT_TRACK_DNS_ENABLE: 'false', PROXY_MODE: 'ipvs' };

t.test('every fix off on a node that never had nodenet: ready, nothing written', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...ALL_OFF } });
  await agent.ready();
  await agent.waitForLog((l) => l.msg === 'reconciled');
  t.same(await legacyTableNames(node.netns, 'ipv4'), [], 'no table was even created');
  t.equal(await agent.metric('nodenet_kernel_errors_total'), 0, 'no kernel error');
  t.same(agent.logs().filter((l) => l.level >= 50), [], 'no error logged');
  t.equal((await agent.get('/readyz')).status, 200, 'still ready after resyncs');
});

t.test('turning drop-INVALID off removes its chain and jump, and only those', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  await node.netns.exec('iptables-legacy', ['-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
  const lockFile = lockFileFor(t);
  const on = await startAgent(t, { cluster, netns: node.netns, lockFile, env: { NODE_NAME: node.name } });
  await on.ready();
  t.match(await iptablesSave(node.netns, 'ipv4', 'filter'), /^-A INPUT .*-j NODENET-DROP-INVALID\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT$/m, 'jump first');
  await on.stop();

  const off = await startAgent(t, { cluster, netns: node.netns, lockFile, env: { NODE_NAME: node.name, RULE_DROP_INVALID_INPUT_ENABLE: 'false' } });
  await off.ready();
  const filter = await iptablesSave(node.netns, 'ipv4', 'filter');
  t.notMatch(filter, /NODENET/, 'chain and jump are gone');
  t.match(filter, /^-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT$/m, 'the other rule stays');
  await eventually(async () => {
    if (off.logs().filter((l) => l.msg === 'reconciled').length < 3) throw new Error('waiting for resyncs');
  }, 15_000);
  t.equal(await off.metric('nodenet_netfilter_commits_total', { table: 'filter' }), 1, 'one commit removed it; resyncs with the chain absent commit nothing');
  t.equal(await off.metric('nodenet_kernel_errors_total'), 0, 'and fail nothing');
});
