// The agent's HTTP endpoints: /healthz (process and kernel worker threads), /readyz (informers
// synced and the last apply succeeded), /metrics (per feature and table, never per Service).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import t from 'tap';

import { addUplink, applyAgentRbac, sandboxNode, sendUdp, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture } from '../helpers/kube.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

const series = (text: string) => text.split('\n').filter((l) => l.startsWith('nodenet_') && !l.startsWith('nodenet_process') && !l.startsWith('nodenet_nodejs'));

t.test('healthz, readyz and metrics', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' } });
  await agent.ready();

  const health = await agent.get('/healthz');
  t.equal(health.status, 200);
  t.match(health.body, /^ok: 2 kernel worker threads in the process's namespace\n$/);
  const ready = await agent.get('/readyz');
  t.equal(ready.status, 200);
  t.match(ready.body, 'node-fixes: synced, last reconcile succeeded');
  t.equal((await agent.get('/nope')).status, 404);

  const metrics = await agent.get('/metrics');
  for (const name of [
    'nodenet_reconcile_duration_seconds_bucket',
    'nodenet_rules',
    'nodenet_xtables_lock_wait_seconds_bucket',
    'nodenet_xtables_lock_hold_seconds_bucket',
    'nodenet_netfilter_commits_total',
    'nodenet_netfilter_changes_total',
    'nodenet_matched_packets_total',
    'nodenet_matched_bytes_total',
    'nodenet_informer_synced',
    'nodenet_proxy_mode',
    'nodenet_process_cpu_seconds_total',
  ]) {
    t.match(metrics.body, new RegExp(`^${name}[{ ]`, 'm'), `exports ${name}`);
  }
  t.equal(await agent.metric('nodenet_informer_synced', { informer: 'services' }), 1);
  t.equal(await agent.metric('nodenet_rules', { feature: 'drop-invalid', family: 'ipv4' }), 1);

  // Packets a DNAT acts on are counted from the kernel's rule counters: one UDP packet from the node.
  await addUplink(node.netns);
  await k.createService({ name: 'udp', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ports: [{ name: 'u', port: 7777, protocol: 'UDP' }] });
  await k.setLoadBalancerIngress('udp', [{ ip: '203.0.113.99' }]);
  await eventually(async () => {
    if ((await agent.metric('nodenet_rules', { feature: 'external-cluster', family: 'ipv4' })) !== 4) throw new Error('no rules yet');
  }, 15_000);
  t.equal(await agent.metric('nodenet_matched_packets_total', { feature: 'external-cluster', family: 'ipv4' }), 0, 'nothing matched yet');
  await sendUdp(node.netns, '203.0.113.99', 7777, 20);
  t.equal(await agent.metric('nodenet_matched_packets_total', { feature: 'external-cluster', family: 'ipv4' }), 1, 'one packet DNATed');
  t.equal(await agent.metric('nodenet_matched_bytes_total', { feature: 'external-cluster', family: 'ipv4' }), 48, 'of 48 bytes (IP + UDP headers + 20)');

  // Cardinality: 30 more Services with external addresses add no series.
  const count = series(metrics.body).filter((l) => !l.includes('_bucket') && !l.startsWith('nodenet_reconcile')).length;
  const created = await k.createServices(Array.from({ length: 30 }, (_, i) => ({ name: `s${i}`, type: 'LoadBalancer' as const, allocateLoadBalancerNodePorts: false })));
  await Promise.all(created.map((s) => k.setLoadBalancerIngress(s.metadata!.name!, [{ ip: `203.0.113.${100 + created.indexOf(s)}` }])));
  await eventually(async () => {
    if ((await agent.metric('nodenet_rules', { feature: 'external-cluster', family: 'ipv4' })) !== 124) throw new Error('not all rules yet');
  }, 20_000);
  const later = series((await agent.get('/metrics')).body).filter((l) => !l.includes('_bucket') && !l.startsWith('nodenet_reconcile'));
  t.equal(later.length, count, `as many series with 32 Services as with 2 (${count})`);
  t.notMatch(later.join('\n'), /203\.0\.113|s\d+"/, 'no address or Service name in any label');
});

t.test('readyz fails while the last apply fails, and recovers', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  // An xtables lock of this test's own, so that holding it blocks nobody else.
  const xtablesLock = join(mkdtempSync(join(tmpdir(), 'nodenet-xtlock-')), 'xtables.lock');
  t.teardown(() => rmSync(dirname(xtablesLock), { recursive: true, force: true }));
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, XTABLES_LOCKFILE: xtablesLock } });
  await agent.ready();
  // Another writer keeps the lock past the agent's 5 s wait: every apply fails with ETIMEDOUT.
  // flock's child holds the lock: the group is killed, not just flock.
  const holder = spawn('flock', ['-x', xtablesLock, 'sleep', '30'], { stdio: 'ignore', detached: true });
  const release = () => {
    try {
      process.kill(-holder.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  t.teardown(release);
  const failing = await eventually(async () => {
    const r = await agent.get('/readyz');
    if (r.status !== 503) throw new Error(`readyz ${r.status}`);
    return r;
  }, 20_000);
  t.match(failing.body, /^failed: node-fixes: last reconcile of node-fixes failed: .*xtables lock/, 'says which reconcile failed and why');
  t.ok((await agent.metric('nodenet_kernel_errors_total', { code: 'ETIMEDOUT' })) >= 1, 'the kernel error is counted by errno');
  t.equal((await agent.get('/healthz')).status, 200, 'alive all the same: a restart would not help');

  release();
  await agent.ready(30_000);
  t.pass('ready again once a retry succeeds');
});
