// The agent follows Services on a real API server: create, edit and delete them and watch the
// node namespace's nat table (iptables-legacy-save) follow, with no rule left for an old address.
import t from 'tap';

import { addUplink, applyAgentRbac, sandboxNode, sendUdp, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import { iptablesSave } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const IPVS = { PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' };

/** The rules of nodenet's external chains in the node's ipv4 nat table. */
async function externalRules(node: { netns: Parameters<typeof iptablesSave>[0] }): Promise<string[]> {
  const save = await iptablesSave(node.netns, 'ipv4', 'nat');
  return save.split('\n').filter((l) => l.startsWith('-A NODENET-EXTERNAL-'));
}

t.test('create, edit and delete a LoadBalancer Service', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...IPVS } });
  await agent.ready();
  t.same(await externalRules(node), [], 'no Service with an external IP, no rule');

  const svc = await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  const clusterIP = svc.spec!.clusterIP!;
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.7' }]);
  const comment = `-m comment --comment "${k.namespace}/web:http"`;
  const created = await eventually(async () => {
    const rules = await externalRules(node);
    if (!rules.some((r) => r.includes('203.0.113.7'))) throw new Error(`no rule for 203.0.113.7 yet: ${rules.join('\n')}`);
    return rules;
  }, 15_000);
  t.same(
    created,
    [
      `-A NODENET-EXTERNAL-HOST -d 203.0.113.7/32 -p tcp ${comment} -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000`,
      `-A NODENET-EXTERNAL-HOST -d 203.0.113.7/32 -p tcp ${comment} -m tcp --dport 80 -j DNAT --to-destination ${clusterIP}:80`,
      `-A NODENET-EXTERNAL-PODS -s 10.244.1.0/24 -d 203.0.113.7/32 -p tcp ${comment} -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000`,
      `-A NODENET-EXTERNAL-PODS -s 10.244.1.0/24 -d 203.0.113.7/32 -p tcp ${comment} -m tcp --dport 80 -j DNAT --to-destination ${clusterIP}:80`,
    ],
    'host and pod rules: mark for masquerade, DNAT to the cluster IP',
  );

  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.8' }]);
  const edited = await eventually(async () => {
    const rules = await externalRules(node);
    if (!rules.some((r) => r.includes('203.0.113.8'))) throw new Error(`no rule for 203.0.113.8 yet: ${rules.join('\n')}`);
    return rules;
  }, 15_000);
  t.equal(edited.length, 4, 'the same four rules');
  t.notOk(edited.some((r) => r.includes('203.0.113.7')), 'and none left for the old IP');

  await k.core.patchNamespacedService({ name: 'web', namespace: k.namespace, body: [{ op: 'replace', path: '/spec/ports/0/port', value: 8443 }] });
  await eventually(async () => {
    const rules = await externalRules(node);
    if (!rules.every((r) => r.includes('--dport 8443')) || rules.length !== 4) throw new Error(`port not followed yet: ${rules.join('\n')}`);
  }, 15_000);
  t.pass('a port edit is followed');

  await k.core.deleteNamespacedService({ name: 'web', namespace: k.namespace });
  await eventually(async () => {
    const rules = await externalRules(node);
    if (rules.length) throw new Error(`rules remain: ${rules.join('\n')}`);
  }, 15_000);
  const save = await iptablesSave(node.netns, 'ipv4', 'nat');
  t.match(save, /^:NODENET-EXTERNAL-PODS - \[0:0\]$/m, 'the chains stay (empty) while the fix is on');
  t.match(save, /^-A PREROUTING .*-j NODENET-EXTERNAL-PODS$/m, 'and so does the jump');
});

t.test('a changed UDP DNAT takes its stale conntrack flows with it', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  await addUplink(node.netns);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...IPVS } });
  await agent.ready();
  const svc = await k.createService({
    name: 'dns',
    type: 'LoadBalancer',
    allocateLoadBalancerNodePorts: false,
    ports: [{ name: 'dns', port: 5353, protocol: 'UDP', targetPort: 5353 }],
  });
  await k.setLoadBalancerIngress('dns', [{ ip: '203.0.113.30' }]);
  await eventually(async () => {
    if (!(await externalRules(node)).some((r) => r.includes('203.0.113.30'))) throw new Error('no rule yet');
  }, 15_000);

  // The node itself (a hostNetwork pod) sends; its flow is DNATed to the cluster IP.
  await sendUdp(node.netns, '203.0.113.30', 5353);
  const flows = async () =>
    (await node.netns.exec('conntrack', ['-L', '-p', 'udp'])).split('\n').filter((l) => l.includes('dst=203.0.113.30') && l.includes('dport=5353'));
  const before = await flows();
  t.equal(before.length, 1, 'one flow to the load balancer IP');
  t.match(before[0], `src=${svc.spec!.clusterIP}`, 'translated to the cluster IP');

  await k.setLoadBalancerIngress('dns', [{ ip: '203.0.113.31' }]);
  await eventually(async () => {
    const left = await flows();
    if (left.length) throw new Error(`the stale flow is still there: ${left.join('\n')}`);
  }, 15_000);
  t.pass('the flow pinned to the old translation is gone');
  t.ok((await agent.metric('nodenet_conntrack_flows_deleted_total')) >= 1, 'and counted');
});
