// Startup refusals: an invalid setting stops the agent with exit status 2 and names the variable;
// a second agent on a node (same lock file) exits with a message saying another one runs.
import t from 'tap';

import { agentKubeconfig, applyAgentRbac, lockFileFor, runNodenet, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { kubeFixture } from '../helpers/kube.js';
import { makeNetns } from '../helpers/netns.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

t.test('an invalid value exits 2 and names the variable', async (t) => {
  const node = await makeNetns(t);
  const kubeconfig = agentKubeconfig(cluster);
  const base = { NODE_NAME: 'node-x', KUBECONFIG: kubeconfig, NODENET_LOCK_FILE: lockFileFor(t), METRICS_ADDRESS: '127.0.0.1:0' };
  const cases: Array<[Record<string, string>, string]> = [
    [{ PROXY_MODE: 'userspace' }, 'PROXY_MODE must be one of auto, ipvs, iptables, nftables, not "userspace"'],
    [{ RESYNC_PERIOD: '60' }, 'RESYNC_PERIOD must be a duration'],
    [{ METRICS_ADDRESS: '9402' }, 'METRICS_ADDRESS must be host:port'],
    [{ RULE_EXTERNAL_CLUSTER_ENABLE: 'yes' }, 'RULE_EXTERNAL_CLUSTER_ENABLE="yes": expected true or false'],
    [{ POD_CIDR_IPV4: '10.244.1.1/16' }, 'POD_CIDR_IPV4="10.244.1.1/16"'],
    [{ NODE_NAME: '' }, 'NODE_NAME is required'],
    [{ KUBECONFIG: '/nonexistent/kubeconfig' }, 'KUBECONFIG cannot load /nonexistent/kubeconfig'],
  ];
  const results = await Promise.all(cases.map(([env]) => runNodenet(['agent', '--netns', node.path], { ...base, ...env })));
  cases.forEach(([env, message], i) => {
    t.equal(results[i]!.code, 2, `${JSON.stringify(env)}: exit status 2`);
    t.match(results[i]!.stderr, message, `${JSON.stringify(env)}: the message names it`);
  });
  const two = await runNodenet(['agent', '--netns', node.path], { ...base, PROXY_MODE: 'x', NET_STACK: 'ipv5' });
  t.match(two.stderr, /PROXY_MODE[^\n]*\n[^]*NET_STACK|NET_STACK[^\n]*\n[^]*PROXY_MODE/, 'every problem is reported at once');
});

t.test('a second agent with the same lock file exits with a clear message', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const lockFile = lockFileFor(t);
  const env = { NODE_NAME: node.name };
  const first = await startAgent(t, { cluster, netns: node.netns, lockFile, env });
  await first.ready();
  const second = await runNodenet(['agent', '--netns', node.netns.path], {
    ...env,
    KUBECONFIG: agentKubeconfig(cluster),
    NODENET_LOCK_FILE: lockFile,
    METRICS_ADDRESS: '127.0.0.1:0',
  });
  t.equal(second.code, 1, 'exit status 1');
  t.match(second.stderr, `nodenet agent: another nodenet agent already runs on this node: `, 'says why');
  t.match(second.stderr, `(pid ${first.pid})`, 'and which process holds the lock');
  t.equal((await first.get('/readyz')).status, 200, 'the first agent carries on');
});
