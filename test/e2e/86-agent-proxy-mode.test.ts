// The External-IP fix exists for IPVS only. PROXY_MODE=iptables refuses it: no rule, a log line,
// and a Warning Event on each Service whose external address is left to kube-proxy.
// PROXY_MODE=auto recognises IPVS by the kube-ipvs0 link kube-proxy creates.
import t from 'tap';

import { applyAgentRbac, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import { iptablesSave } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

t.test('iptables mode refuses the external fix with a log line and a Warning Event', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const svc = await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.50' }]);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, PROXY_MODE: 'iptables', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' } });
  await agent.ready();
  const line = await agent.waitForLog((l) => l.reason === 'NotIPVSMode');
  t.equal(line.level, 40, 'a warning');
  t.match(line.msg, 'kube-proxy runs in iptables mode');
  t.notMatch(await iptablesSave(node.netns, 'ipv4', 'nat'), /NODENET/, 'no external rule, not even a chain');

  const events = await eventually(async () => {
    const list = await k.core.listNamespacedEvent({ namespace: k.namespace, fieldSelector: 'involvedObject.name=web' });
    if (!list.items.length) throw new Error('no Event yet');
    return list.items;
  }, 15_000);
  t.equal(events.length, 1, 'one Event');
  t.match(events[0], {
    type: 'Warning',
    reason: 'NotIPVSMode',
    involvedObject: { kind: 'Service', name: 'web', namespace: k.namespace, uid: svc.metadata!.uid },
    source: { component: 'nodenet', host: node.name },
    count: 1,
  });
  t.match(events[0]!.message, `nodenet on node ${node.name}: RULE_EXTERNAL_CLUSTER_ENABLE is set but kube-proxy runs in iptables mode`);

  // Resyncs every 2 s repeat the finding; the Event is rate-limited per Service and reason.
  await eventually(async () => {
    if ((await agent.metric('nodenet_kubernetes_events_total', { reason: 'NotIPVSMode', outcome: 'suppressed' })) < 2) throw new Error('not repeated yet');
  }, 15_000);
  const again = await k.core.listNamespacedEvent({ namespace: k.namespace, fieldSelector: 'involvedObject.name=web' });
  t.equal(again.items.length, 1, 'still one Event');
  t.equal(again.items[0]!.count, 1, 'not updated within the rate-limit interval');
  t.equal(agent.logs().filter((l) => l.reason === 'NotIPVSMode').length, 1, 'and one log line, not one per resync');
});

t.test('auto detects IPVS by the kube-ipvs0 link', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.51' }]);
  // kube-proxy's link is a dummy; this kernel has no dummy driver, and only the name matters.
  await node.netns.exec('ip', ['link', 'add', 'kube-ipvs0', 'type', 'bridge']);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, PROXY_MODE: 'auto', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' } });
  await agent.ready();
  t.equal(await agent.metric('nodenet_proxy_mode', { mode: 'ipvs' }), 1, 'IPVS detected');
  t.match(await iptablesSave(node.netns, 'ipv4', 'nat'), /^-A NODENET-EXTERNAL-PODS .*-d 203\.0\.113\.51\/32 .*-j DNAT/m, 'and the fix applied');

  await node.netns.exec('ip', ['link', 'del', 'kube-ipvs0']);
  await eventually(async () => {
    if (/NODENET-EXTERNAL/.test(await iptablesSave(node.netns, 'ipv4', 'nat'))) throw new Error('external rules still there');
  }, 15_000);
  t.equal(await agent.metric('nodenet_proxy_mode', { mode: 'iptables' }), 1, 'without the link: iptables mode, and the fix withdrawn at the next resync');
});
