// qdiscs: tbf installed, changed and removed through the addon, as `tc -s -j qdisc` sees it; kinds
// this kernel lacks are reported by name, and nothing else changes.
import t from 'tap';

import { isKernelError, qdiscs } from '../../lib/kernel/index.js';
import { linkedPair, makeNetns, type TestNetns } from '../helpers/netns.js';

interface TcQdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options: { rate?: number; burst?: number; minburst?: number; lat?: number; limit?: number };
  packets?: number;
}

async function tcQdiscs(ns: TestNetns, dev: string): Promise<TcQdisc[]> {
  return JSON.parse(await ns.exec('tc', ['-s', '-j', 'qdisc', 'show', 'dev', dev])) as TcQdisc[];
}

async function vethPair(t: { teardown(fn: () => unknown): void }): Promise<TestNetns> {
  const ns = await makeNetns(t);
  await ns.exec('ip', ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  await ns.exec('ip', ['link', 'set', 'v0', 'up']);
  await ns.exec('ip', ['link', 'set', 'v1', 'up']);
  return ns;
}

t.test('tbf: install, read back, change live, remove', async (t) => {
  const ns = await vethPair(t);
  const target = { netns: ns.path, device: 'v0', handle: '1:' };
  await qdiscs.replace(target, { kind: 'tbf', tbf: { rate: 10_000_000, burst: 32_768, latency: 50_000_000 } });

  const [ours] = await qdiscs.list({ netns: ns.path, device: 'v0' });
  t.match(ours, { device: 'v0', kind: 'tbf', handle: '1:', parent: 'root' });
  t.same(ours?.tbf, { rate: 10_000_000, burst: 32_768, limit: 1_250_000 * 0.05 + 32_768, peakrate: 0, mtu: 0, overhead: 0, mpu: 0 });
  const [theirs] = await tcQdiscs(ns, 'v0');
  t.match(theirs, { kind: 'tbf', handle: '1:', root: true });
  t.equal(theirs?.options.rate, 1_250_000, 'tc: rate in bytes/s');
  t.ok(Math.abs((theirs?.options.burst ?? 0) - 32_768) <= 1, `tc: burst ${theirs?.options.burst} (tc truncates)`);
  t.equal(theirs?.options.lat, 50_000, 'tc: latency in µs derived from the limit');

  await qdiscs.update(target, { kind: 'tbf', tbf: { rate: 2_000_000, burst: 16_000, limit: 40_000 } });
  const [changed] = await qdiscs.list({ netns: ns.path, device: 'v0' });
  t.match(changed, { handle: '1:', tbf: { rate: 2_000_000, burst: 16_000, limit: 40_000 } }, 'changed in place');
  t.equal((await tcQdiscs(ns, 'v0'))[0]?.options.rate, 250_000);

  await qdiscs.replace(target, { kind: 'tbf', tbf: { rate: 40_000_000_000, burst: 1_000_000, limit: 2_000_000, peakrate: 50_000_000_000, mtu: 9000 } });
  const [fast] = await qdiscs.list({ netns: ns.path, device: 'v0' });
  t.match(fast?.tbf, { rate: 40_000_000_000, peakrate: 50_000_000_000, limit: 2_000_000 }, 'rates past 4 GB/s use the 64-bit attributes');
  // Only the time to send mtu bytes is kept, in 64 ns ticks: at 6.25 GB/s a tick is 400 bytes.
  t.ok(Math.abs((fast?.tbf?.mtu ?? 0) - 9000) <= 400, `peak bucket ${fast?.tbf?.mtu} within one tick of 9000`);

  await qdiscs.remove({ netns: ns.path, device: 'v0' });
  const after = await tcQdiscs(ns, 'v0');
  t.same(after.map((q) => q.kind), ['noqueue'], 'the default qdisc is back');
  t.same((await qdiscs.list({ netns: ns.path, device: 'v0' })).map((q) => q.kind), ['noqueue']);
});

t.test('statistics count real packets', async (t) => {
  const { a: ns } = await linkedPair(t);
  await qdiscs.replace({ netns: ns.path, device: 'va', handle: '1:' }, { kind: 'tbf', tbf: { rate: 100_000_000, burst: 100_000, limit: 200_000 } });
  await ns.exec('ping', ['-c', '5', '-i', '0.2', '-q', '10.77.0.2']);
  // The kernel sends on its own too (IPv6 neighbour discovery on a fresh link), so nodenet's read
  // is bracketed by two of tc's: it must lie between them.
  const [before] = await tcQdiscs(ns, 'va');
  const [q] = await qdiscs.list({ netns: ns.path, device: 'va' });
  const [after] = await tcQdiscs(ns, 'va');
  const packets = Number(q?.stats?.packets ?? 0n);
  t.ok(packets >= 5, `packets counted: ${packets}`);
  t.ok(packets >= (before?.packets ?? Infinity) && packets <= (after?.packets ?? -1), `the count tc shows: ${before?.packets} ≤ ${packets} ≤ ${after?.packets}`);
});

t.test('errors: existing qdisc, missing device, missing kind, bad options', async (t) => {
  const ns = await vethPair(t);
  const target = { netns: ns.path, device: 'v0', handle: '1:' };
  await qdiscs.add(target, { kind: 'tbf', tbf: { rate: 1_000_000, burst: 10_000, limit: 20_000 } });
  const exists = await qdiscs.add({ ...target, handle: '2:' }, { kind: 'tbf', tbf: { rate: 1_000_000, burst: 10_000, limit: 20_000 } }).catch((e: unknown) => e);
  t.ok(isKernelError(exists) && exists.code === 'EEXIST', 'add over an existing root qdisc is EEXIST');

  const noDev = await qdiscs.replace({ netns: ns.path, device: 'nope0' }, { kind: 'tbf', tbf: { rate: 8, burst: 1, limit: 1 } }).catch((e: unknown) => e);
  t.ok(isKernelError(noDev));
  if (isKernelError(noDev)) {
    t.equal(noDev.code, 'ENODEV');
    t.equal(noDev.object, 'dev nope0');
  }

  // This machine's kernel has no sch_netem; the VM stage proves netem itself.
  const netem = await qdiscs.replace({ netns: ns.path, device: 'v0' }, { kind: 'netem', netem: { delay: 100_000_000 } }).catch((e: unknown) => e);
  t.ok(isKernelError(netem), 'a KernelError, not a crash');
  if (isKernelError(netem)) {
    t.equal(netem.code, 'ENOENT');
    t.equal(netem.op, 'qdiscs.change');
    t.equal(netem.extack, 'Specified qdisc kind is unknown');
    t.match(netem.message, /^netem is not available in this kernel \(load the sch_netem module\): /);
  }
  t.same((await tcQdiscs(ns, 'v0')).map((q) => [q.kind, q.handle]), [['tbf', '1:']], 'the failed calls changed nothing');

  await t.rejects(qdiscs.replace(target, { kind: 'tbf', tbf: { rate: 1_000_000, burst: 10_000 } }), qdiscs.TbfOptionError);
  await t.rejects(qdiscs.replace(target, { kind: 'netem', netem: { loss: 101 } }), qdiscs.NetemOptionError);
  await t.rejects(qdiscs.replace({ ...target, parent: 'nonsense' }, { kind: 'tbf', tbf: { rate: 8, burst: 1, limit: 1 } }), TypeError);
});
