// The smaller kernel services the agent needs: deleting stale conntrack flows, per-namespace
// sysctls, and the one-writer-per-node lock.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { conntrack, isKernelError, runtime, sysctl } from '../../lib/kernel/index.js';
import { distEntry } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { iptables } from '../helpers/witness.js';

async function udpFlows(ns: TestNetns, targets: Array<[string, number]>): Promise<void> {
  // A conntrack rule makes the namespace track connections at all.
  await iptables(ns, 'ipv4', ['-A', 'OUTPUT', '-m', 'conntrack', '--ctstate', 'NEW']);
  const script = `const d = require('node:dgram').createSocket('udp4'); let n = 0; const all = ${JSON.stringify(targets)};
    for (const [h, p] of all) d.send('x', p, h, () => { if (++n === all.length) d.close(); });`;
  await ns.exec(process.execPath, ['-e', script]);
}

async function flows(ns: TestNetns): Promise<string[]> {
  const r = await runAllowingFailure('ip', ['netns', 'exec', ns.name, 'conntrack', '-L', '-p', 'udp']);
  return r.stdout.split('\n').filter((l) => l.startsWith('udp')).map((l) => /dst=(\S+) sport=\d+ dport=(\d+)/.exec(l)!.slice(1).join(':')).sort();
}

t.test('conntrack.deleteFlows deletes exactly the matching UDP flows', async (t) => {
  const ns = await makeNetns(t);
  await udpFlows(ns, [['127.0.0.53', 53], ['127.0.0.53', 53], ['127.0.0.54', 53], ['127.0.0.53', 5353]]);
  t.same(await flows(ns), ['127.0.0.53:53', '127.0.0.53:5353', '127.0.0.54:53'], 'witness: three flows');
  t.equal(await conntrack.deleteFlows({ netns: ns.path, destination: '127.0.0.53', port: 53 }), 1);
  t.same(await flows(ns), ['127.0.0.53:5353', '127.0.0.54:53'], 'only that flow went');
  t.equal(await conntrack.deleteFlows({ netns: ns.path, destination: '127.0.0.53' }), 1, 'any port');
  t.same(await flows(ns), ['127.0.0.54:53']);
  t.equal(await conntrack.deleteFlows({ netns: ns.path, destination: '127.0.0.99', port: 53 }), 0, 'nothing to delete is not an error');
  await t.rejects(conntrack.deleteFlows({ netns: ns.path, destination: 'nonsense' }), TypeError);
});

t.test('sysctls are read and written per namespace', async (t) => {
  const a = await makeNetns(t);
  const b = await makeNetns(t);
  t.equal(await sysctl.read('net.ipv4.ip_forward', { netns: a.path }), '0');
  await sysctl.write('net.ipv4.ip_forward', 1, { netns: a.path });
  t.equal(await sysctl.read('net.ipv4.ip_forward', { netns: a.path }), '1');
  t.equal((await a.exec('sysctl', ['-n', 'net.ipv4.ip_forward'])).trim(), '1', 'witness: sysctl(8) in the namespace');
  t.equal(await sysctl.read('net.ipv4.ip_forward', { netns: b.path }), '0', 'another namespace is unaffected');
  t.match(await sysctl.read('net.netfilter.nf_conntrack_tcp_be_liberal', { netns: a.path }), /^[01]$/);
  const missing = await sysctl.read('net.ipv4.no_such_setting', { netns: a.path }).catch((e: unknown) => e);
  t.ok(isKernelError(missing) && missing.code === 'ENOENT', 'a missing sysctl is ENOENT');
  const outside = await sysctl.read('kernel.hostname').catch((e: unknown) => e);
  t.ok(isKernelError(outside) && outside.code === 'EINVAL', 'only net.* sysctls');
});

t.test('the node lock admits one holder at a time', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'nodenet-nodelock-')), 'nodenet.lock');
  const held = await runtime.lockFile(path);
  const script = `const { runtime } = await import(${JSON.stringify(distEntry('lib/kernel/index.js'))});
    try { const l = await runtime.lockFile(${JSON.stringify(path)}); console.log('acquired'); l.release(); }
    catch (e) { console.log(e.code + ' ' + e.message); }`;
  const blocked = await runAllowingFailure(process.execPath, ['--input-type=module', '-e', script]);
  t.match(blocked.stdout, new RegExp(`^EAGAIN lock\\.acquire lock ${path.replace(/[.]/g, '\\.')}: another process holds it \\(pid ${process.pid}\\)`));
  held.release();
  const free = await runAllowingFailure(process.execPath, ['--input-type=module', '-e', script]);
  t.equal(free.stdout.trim(), 'acquired');
});
