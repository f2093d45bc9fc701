// The agent on nf_tables: with BACKEND unset it detects the backend (kubelet's hint chains are in
// nf_tables, although an older legacy setup left rules behind), says so in its log, its metrics and `nodenet version`, removes what an
// earlier legacy run left, follows Services in its own `ip nodenet` table (witness: nft), and a
// restart forced back to legacy takes that table away again. A conntrack-free UDP DNAT change
// still takes its stale flows with it, the "before" read back from nf_tables after a restart.
import t from 'tap';

import { applyAgentRbac, runNodenet, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import type { TestNetns } from '../helpers/netns.js';
import { iptablesRestore, iptablesSave, nftTableJson } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const IPVS = { PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true', BACKEND: '' };

async function nftRules(netns: TestNetns): Promise<string[]> {
  const text = await netns.exec('nft', ['list', 'table', 'ip', 'nodenet']).catch(() => '');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.includes('dnat') || l.includes('meta mark set'));
}

t.test('auto-detected nftables: leftovers migrated, Services followed, forced legacy migrates back', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  // What an earlier agent on legacy iptables left behind, next to a foreign rule that must stay.
  await iptablesRestore(
    node.netns,
    'ipv4',
    '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:NODENET-EXTERNAL-PODS - [0:0]\n' +
      '-A PREROUTING -j NODENET-EXTERNAL-PODS\n-A NODENET-EXTERNAL-PODS -d 198.51.100.1/32 -j DNAT --to-destination 10.96.0.1\n' +
      '-A POSTROUTING -s 10.244.0.0/16 -j MASQUERADE\n-A POSTROUTING -s 10.245.0.0/16 -j MASQUERADE\nCOMMIT\n',
  );

  // kubelet (through iptables-nft) marks the node as an nf_tables one.
  await node.netns.exec('nft', ['-f', '-'], 'table ip mangle {\n  chain KUBE-IPTABLES-HINT {}\n  chain KUBE-KUBELET-CANARY {}\n}\n');

  const svc = await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  const clusterIP = svc.spec!.clusterIP!;
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.7' }]);

  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...IPVS } });
  await agent.ready();
  const chosen = await agent.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('netfilter backend:'));
  t.match(chosen, { backend: 'nftables', forced: false, evidence: { nftHints: ['ip mangle KUBE-IPTABLES-HINT', 'ip mangle KUBE-KUBELET-CANARY'], legacyRules: 2 } }, 'detected, with the evidence (nodenet\'s own legacy rules not counted)');
  t.equal(await agent.metric('nodenet_netfilter_backend', { backend: 'nftables', forced: 'false' }), 1, 'and as a metric');
  await agent.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith("removed nodenet's rules from the backend it no longer uses"));

  const legacy = await iptablesSave(node.netns, 'ipv4', 'nat');
  t.notMatch(legacy, /NODENET/, 'the legacy leftovers are gone');
  t.match(legacy, /-A POSTROUTING -s 10.244.0.0\/16 -j MASQUERADE\n-A POSTROUTING -s 10.245.0.0\/16 -j MASQUERADE/, 'foreign rules stay');

  const comment = `comment "${k.namespace}/web:http"`;
  const rules = await eventually(async () => {
    const r = await nftRules(node.netns);
    if (!r.some((l) => l.includes('203.0.113.7'))) throw new Error(`no nft rule for 203.0.113.7 yet: ${r.join('\n')}`);
    return r;
  }, 15_000);
  t.equal(rules.length, 4, rules.join('\n'));
  t.ok(rules.includes(`ip saddr 10.244.1.0/24 ip daddr 203.0.113.7 tcp dport 80 counter packets 0 bytes 0 dnat to ${clusterIP}:80 ${comment}`), rules.join('\n'));
  t.ok(rules.includes(`ip daddr 203.0.113.7 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 ${comment}`), rules.join('\n'));

  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.8' }]);
  await eventually(async () => {
    const r = await nftRules(node.netns);
    if (r.length !== 4 || r.some((l) => l.includes('203.0.113.7'))) throw new Error(`not followed yet: ${r.join('\n')}`);
  }, 15_000);
  t.pass('an edit is followed in nf_tables');

  // A resync with nothing new commits nothing.
  const commits = await agent.metric('nodenet_netfilter_commits_total');
  const reconciles = () => agent.logs().filter((l) => l.msg === 'reconciled').length;
  const seen = reconciles();
  await eventually(async () => {
    if (reconciles() < seen + 2) throw new Error('fewer than two resyncs yet');
  }, 15_000);
  t.equal(await agent.metric('nodenet_netfilter_commits_total'), commits, 'resyncs of an unchanged world commit nothing');
  await agent.stop();

  const version = await runNodenet(['version', '--netns', node.netns.path, '--json'], { BACKEND: '' });
  t.match(JSON.parse(version.stdout), { backend: { backend: 'nftables', forced: false } }, 'nodenet version agrees');

  const legacyAgent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, ...IPVS, BACKEND: 'iptables-legacy' } });
  await legacyAgent.ready();
  t.match(await legacyAgent.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('netfilter backend:')), { backend: 'iptables-legacy', forced: true });
  await eventually(async () => {
    const save = await iptablesSave(node.netns, 'ipv4', 'nat');
    if (!save.includes('203.0.113.8')) throw new Error('no legacy rule yet');
  }, 15_000);
  t.equal(await nftTableJson(node.netns, 'ip', 'nodenet'), null, 'the nft table is gone');
  await legacyAgent.stop();
});
