// `nodenet diff` prints what the agent would change and changes nothing; `nodenet cleanup` removes
// everything nodenet owns, in both families and every table, and leaves everything else as it was.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { agentKubeconfig, applyAgentRbac, lockFileFor, runNodenet, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { kubeFixture } from '../helpers/kube.js';
import type { TestNetns } from '../helpers/netns.js';
import { iptablesRestore, legacyRulesets } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);


const FIXES = { PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true', NET_STACK: 'ipv4,ipv6', POD_CIDR_IPV6: 'fd00:10:244:1::/64' };

t.test('diff prints the pending changes and changes nothing', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.60' }]);
  const env = { ...FIXES, NODE_NAME: node.name, KUBECONFIG: agentKubeconfig(cluster), NODENET_LOCK_FILE: lockFileFor(t) };

  const before = await legacyRulesets(node.netns);
  const diff = await runNodenet(['diff', '--netns', node.netns.path], env);
  t.equal(diff.code, 0, diff.stderr);
  // A node that never had iptables rules: tables to create, described without instantiating them.
  t.match(diff.stdout, /^ipv4 filter:\n  create table filter\n  create chain NODENET-DROP-INVALID\n  chain NODENET-DROP-INVALID: add 1 rule at position 1\n  insert jump INPUT -> NODENET-DROP-INVALID\n/m);
  t.match(diff.stdout, /^ipv4 nat:\n  create table nat\n  create chain NODENET-EXTERNAL-HOST\n  create chain NODENET-EXTERNAL-PODS\n  chain NODENET-EXTERNAL-HOST: add 2 rules at position 1\n  chain NODENET-EXTERNAL-PODS: add 2 rules at position 1\n/m);
  t.match(diff.stdout, /^ipv4 raw: no changes$/m);
  t.match(diff.stdout, /^ipv6 filter:\n  create table filter\n  create chain NODENET-DROP-INVALID/m);
  t.equal(await legacyRulesets(node.netns), before, 'the kernel is unchanged');
  const tables = await node.netns.exec('cat', ['/proc/net/ip_tables_names']);
  t.equal(tables, '', 'not even an empty table was created');

  // Where the tables exist, the kernel layer's own diff speaks.
  await node.netns.exec('iptables-legacy', ['-t', 'nat', '-N', 'NODENET-EXTERNAL-PODS']);
  await node.netns.exec('iptables-legacy', ['-t', 'nat', '-A', 'NODENET-EXTERNAL-PODS', '-j', 'RETURN']);
  const partial = await legacyRulesets(node.netns);
  const second = await runNodenet(['diff', '--netns', node.netns.path], env);
  t.match(second.stdout, /^ipv4 nat:\n  create chain NODENET-EXTERNAL-HOST\n  chain NODENET-EXTERNAL-HOST: add 2 rules at position 1\n  chain NODENET-EXTERNAL-PODS: replace 1 rule at position 1 of 1 with 2 rules\n/m);
  t.equal(await legacyRulesets(node.netns), partial, 'and changes nothing either');

  const json = JSON.parse((await runNodenet(['diff', '--netns', node.netns.path, '--json'], env)).stdout) as { proxyMode: string; tables: Array<{ family: string; table: string; changes: string[] }> };
  t.equal(json.proxyMode, 'ipvs');
  t.same(json.tables.map((x) => `${x.family} ${x.table}`), ['ipv4 raw', 'ipv4 filter', 'ipv4 nat', 'ipv6 raw', 'ipv6 filter', 'ipv6 nat'], 'in the order the agent applies');

  const agent = await startAgent(t, { cluster, netns: node.netns, env: { ...FIXES, NODE_NAME: node.name } });
  await agent.ready();
  await agent.stop();
  const after = await runNodenet(['diff', '--netns', node.netns.path], env);
  t.match(after.stdout, new RegExp(`^backend iptables-legacy \\(forced by BACKEND=iptables-legacy\\)\n${['ipv4 raw', 'ipv4 filter', 'ipv4 nat', 'ipv6 raw', 'ipv6 filter', 'ipv6 nat'].map((x) => `${x}: no changes\n`).join('')}findings`), 'once applied, nothing to change');
  t.match(after.stdout, /^  info drop-invalid TcpBeLiberalAlternative: /m, 'and the findings are listed');
});

t.test('cleanup removes what nodenet owns and nothing else', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  // A kube-proxy node's rules, nodenet's neighbours on a real node.
  await iptablesRestore(node.netns, 'ipv4', readFileSync(join(repoRoot, 'test', 'fixtures', 'kube-proxy.v4.rules'), 'utf8'));
  await node.netns.exec('ip6tables-legacy', ['-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
  await k.createService({
    name: 'web',
    type: 'LoadBalancer',
    allocateLoadBalancerNodePorts: false,
    spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] },
  });
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.61' }, { ip: '2001:db8::61' }]);
  const before = await legacyRulesets(node.netns);
  const lockFile = lockFileFor(t);

  const agent = await startAgent(t, { cluster, netns: node.netns, lockFile, env: { ...FIXES, NODE_NAME: node.name } });
  await agent.ready();
  const installed = await legacyRulesets(node.netns);
  t.match(installed, /-A NODENET-EXTERNAL-PODS -s 10\.244\.1\.0\/24 -d 203\.0\.113\.61\/32/);
  t.match(installed, /-A NODENET-EXTERNAL-PODS -s fd00:10:244:1::\/64 -d 2001:db8::61\/128/);

  const busy = await runNodenet(['cleanup', '--netns', node.netns.path], { NODENET_LOCK_FILE: lockFile });
  t.equal(busy.code, 1, 'refused while the agent runs');
  t.match(busy.stderr, 'stop the agent first');
  await agent.stop();

  const cleanup = await runNodenet(['cleanup', '--netns', node.netns.path], { NODENET_LOCK_FILE: lockFile });
  t.equal(cleanup.code, 0, cleanup.stderr);
  t.match(cleanup.stdout, /^ipv4 nat:\n(  .*\n)*  delete chain NODENET-EXTERNAL-PODS\n/m);
  t.match(cleanup.stdout, /^ipv6 filter:\n(  .*\n)*  delete jump INPUT -> NODENET-DROP-INVALID/m);
  t.equal(await legacyRulesets(node.netns), before, 'exactly the rules from before the agent ran');
  const again = await runNodenet(['cleanup', '--netns', node.netns.path], { NODENET_LOCK_FILE: lockFile });
  t.equal(again.stdout, "nothing of nodenet's was left\n", 'a second cleanup has nothing to do');
});
