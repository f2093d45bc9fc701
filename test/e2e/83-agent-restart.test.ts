// Restarts are invisible to the kernel: SIGTERM stops the agent and leaves every rule in place, and
// a new agent that finds 1,000 Services' rules already right commits nothing.
import t from 'tap';

import { applyAgentRbac, lockFileFor, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';
import { iptablesSave } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const SERVICES = 1000;

t.test(`SIGTERM leaves the rules; a restart with ${SERVICES} Services makes zero commits`, async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const created = Date.now();
  // spec.externalIPs (opted in) give each Service an external address in one request.
  await k.createServices(
    Array.from({ length: SERVICES }, (_, i) => ({
      name: `svc-${i}`,
      spec: { externalIPs: [`198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`] },
    })),
  );
  t.comment(`${SERVICES} Services created in ${((Date.now() - created) / 1000).toFixed(1)} s`);
  const env = { NODE_NAME: node.name, PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true', RULE_EXTERNAL_IPS_ENABLE: 'true' };
  const lockFile = lockFileFor(t);

  const first = await startAgent(t, { cluster, netns: node.netns, lockFile, env });
  await first.ready(60_000);
  const rules = (save: string) => save.split('\n').filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS') && l.includes('-j DNAT')).length;
  const before = await iptablesSave(node.netns, 'ipv4', 'nat');
  t.equal(rules(before), SERVICES, 'one pod DNAT per Service');
  t.ok((await first.metric('nodenet_netfilter_commits_total')) >= 1, 'the first agent committed');
  const filterBefore = await iptablesSave(node.netns, 'ipv4', 'filter');

  const ended = await first.stop('SIGTERM');
  t.same(ended, { code: 0, signal: null }, 'SIGTERM: a clean exit');
  await first.waitForLog((l) => l.msg.includes('rules left in place'));
  t.equal(await iptablesSave(node.netns, 'ipv4', 'nat'), before, 'nat is exactly as the agent left it');
  t.equal(await iptablesSave(node.netns, 'ipv4', 'filter'), filterBefore, 'and so is filter');

  const second = await startAgent(t, { cluster, netns: node.netns, lockFile, env });
  await second.ready(60_000);
  // Ready means a reconcile over all 1,000 Services has completed; let a resync run too.
  const reconciled = () => second.logs().filter((l) => l.msg === 'reconciled' && l.services === SERVICES + 1).length;
  await eventually(async () => {
    if (reconciled() < 2) throw new Error(`${reconciled()} reconciles so far`);
  }, 20_000);
  t.equal(await second.metric('nodenet_netfilter_commits_total'), 0, 'the restarted agent made no commit');
  t.same(second.logs().filter((l) => l.msg.startsWith('committed')), [], 'and logged none');
  t.equal(await iptablesSave(node.netns, 'ipv4', 'nat'), before, 'the table is untouched');
});
