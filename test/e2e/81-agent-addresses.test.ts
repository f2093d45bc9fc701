// The address cases network-node-manager got wrong: a Service with two external IPs gets both at
// startup, an IPv6 ingress IP gets only an IPv6 rule (#10), a hostname-only ingress gets none.
import t from 'tap';

import { applyAgentRbac, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import type { TestNetns } from '../helpers/netns.js';
import { iptablesSave } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const IPVS = { PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' };

async function dnats(netns: TestNetns, family: 'ipv4' | 'ipv6'): Promise<string[]> {
  const save = await iptablesSave(netns, family, 'nat');
  return save.split('\n').filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS') && l.includes('-j DNAT'));
}

t.test('a Service with two external IPs gets both at startup', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const svc = await k.createService({ name: 'two', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('two', [{ ip: '203.0.113.21' }, { ip: '203.0.113.22' }]);
  // Started after the Service exists: everything it learns comes from its first list.
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...IPVS } });
  await agent.ready();
  const rules = await dnats(node.netns, 'ipv4');
  t.same(
    rules.map((r) => /-d (\S+) .*--to-destination (\S+)/.exec(r)!.slice(1)),
    [
      ['203.0.113.21/32', `${svc.spec!.clusterIP}:80`],
      ['203.0.113.22/32', `${svc.spec!.clusterIP}:80`],
    ],
    'one DNAT per address, both in place by the time the agent is ready',
  );
});

t.test('an IPv6 ingress IP gets an IPv6 rule and no IPv4 rule', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k, ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  const svc = await k.createService({
    name: 'six',
    type: 'LoadBalancer',
    allocateLoadBalancerNodePorts: false,
    spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] },
  });
  const v6ClusterIP = svc.spec!.clusterIPs!.find((ip) => ip.includes(':'))!;
  await k.setLoadBalancerIngress('six', [{ ip: '2001:db8::6' }]);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, NET_STACK: 'ipv4,ipv6', ...IPVS } });
  await agent.ready();
  const six = await eventually(async () => {
    const rules = await dnats(node.netns, 'ipv6');
    if (!rules.length) throw new Error('no IPv6 rule yet');
    return rules;
  }, 15_000);
  t.equal(six.length, 1);
  t.match(six[0], `-s fd00:10:244:1::/64 -d 2001:db8::6/128 -p tcp`);
  t.match(six[0], `--to-destination [${v6ClusterIP}]:80`, 'DNAT to the IPv6 cluster IP');
  t.same(await dnats(node.netns, 'ipv4'), [], 'no IPv4 rule for an IPv6 address');
});

t.test('a hostname-only ingress gives no rule, and the agent says why', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  await k.createService({ name: 'named', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('named', [{ hostname: 'lb.example.test' }]);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...IPVS } });
  await agent.ready();
  const line = await agent.waitForLog((l) => l.reason === 'HostnameOnlyIngress');
  t.equal(line.service, `${k.namespace}/named`, 'logged for that Service');
  const save = await iptablesSave(node.netns, 'ipv4', 'nat');
  t.same(save.split('\n').filter((l) => l.startsWith('-A NODENET-EXTERNAL-')), [], 'no rule at all');
  t.notMatch(save, /-d \/|-d 0\.0\.0\.0/, 'in particular none for an empty address');
});
