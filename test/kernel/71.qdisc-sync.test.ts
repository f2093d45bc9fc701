// syncDevice against this kernel, tc as the witness: nodenet's qdisc replaces the kernel's default
// root and carries handle 6e6e:, a plan in place changes nothing (same kernel handle, same
// counters), a new rate changes it in place, removal gives the default back, a foreign root is
// left exactly as it was, and a kernel without netem fails before anything changed.
import t from 'tap';

import { syncDevice, tbfMatches, readDevice } from '../../lib/controller/shaping/qdisc-sync.js';
import { isKernelError } from '../../lib/kernel/index.js';
import { bandwidthTbf } from '../../lib/model/shaping/bandwidth.js';
import type { ShapingPlan } from '../../lib/model/shaping/index.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

interface TcQdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst?: number; limit?: number };
}

async function tc(ns: TestNetns, dev: string): Promise<TcQdisc[]> {
  return JSON.parse(await ns.exec('tc', ['-j', 'qdisc', 'show', 'dev', dev])) as TcQdisc[];
}

async function veth(t: Parameters<typeof makeNetns>[0]): Promise<TestNetns> {
  const ns = await makeNetns(t);
  await ns.exec('ip', ['link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  await ns.exec('ip', ['link', 'set', 'v0', 'up']);
  await ns.exec('ip', ['link', 'set', 'v1', 'up']);
  return ns;
}

const cap = (bits: number): ShapingPlan => ({ root: { kind: 'tbf', tbf: bandwidthTbf(bits) }, child: null });

t.test('install over the default, unchanged, change in place, remove', async (t) => {
  const ns = await veth(t);
  const target = { netns: ns.path, device: 'v0' };
  t.same((await tc(ns, 'v0')).map((q) => [q.kind, q.handle]), [['noqueue', '0:']], 'a veth starts with the kernel default');

  t.equal((await syncDevice(target, cap(10_000_000))).action, 'installed');
  let [q] = await tc(ns, 'v0');
  t.match(q, { kind: 'tbf', handle: '6e6e:', root: true }, 'tbf at the root with the reserved handle');
  t.equal(q?.options?.rate, 1_250_000, 'tc: 10 Mbit/s is 1,250,000 bytes/s');

  t.equal((await syncDevice(target, cap(10_000_000))).action, 'unchanged', 'the same plan again changes nothing');
  const read = await readDevice(target);
  t.ok(read.root && tbfMatches(read.root, bandwidthTbf(10_000_000)), 'and the kernel reads back as the plan');

  t.equal((await syncDevice(target, cap(2_000_000))).action, 'changed');
  [q] = await tc(ns, 'v0');
  t.match(q, { kind: 'tbf', handle: '6e6e:' });
  t.equal(q?.options?.rate, 250_000, 'the new rate, same qdisc');

  t.equal((await syncDevice(target, null)).action, 'removed');
  t.same((await tc(ns, 'v0')).map((q) => [q.kind, q.handle]), [['noqueue', '0:']], 'the default is back');
  t.equal((await syncDevice(target, null)).action, 'unchanged', 'nothing of nodenet left to remove');
});

t.test('a foreign root is reported and never touched', async (t) => {
  const ns = await veth(t);
  const target = { netns: ns.path, device: 'v0' };
  await ns.exec('tc', ['qdisc', 'add', 'dev', 'v0', 'root', 'handle', '1:', 'tbf', 'rate', '5mbit', 'burst', '32k', 'latency', '50ms']);
  const before = await tc(ns, 'v0');
  const result = await syncDevice(target, cap(10_000_000));
  t.equal(result.action, 'foreign');
  t.match(result.before, { kind: 'tbf', handle: '1:' }, 'names what is there');
  t.equal((await syncDevice(target, null)).action, 'unchanged', 'removal leaves it too');
  t.same(await tc(ns, 'v0'), before, 'tc shows exactly what it showed before');
});

t.test("a queueing default root (handle 0:, an ifb's) is the kernel's and may be replaced", async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('ip', ['link', 'add', 'd0', 'type', 'ifb']);
  await ns.exec('ip', ['link', 'set', 'd0', 'up']);
  const [q0] = await tc(ns, 'd0');
  t.equal(q0?.handle, '0:', `the default root is ${q0?.kind} 0:`);
  t.equal((await syncDevice({ netns: ns.path, device: 'd0' }, cap(1_000_000))).action, 'installed');
  t.equal((await syncDevice({ netns: ns.path, device: 'd0' }, null)).action, 'removed');
  t.equal((await tc(ns, 'd0'))[0]?.handle, '0:', 'the kernel attached its default again');
});

t.test('netem on a kernel without sch_netem: a named error and nothing changed', async (t) => {
  const ns = await veth(t);
  const target = { netns: ns.path, device: 'v0' };
  await syncDevice(target, cap(10_000_000));
  const before = await tc(ns, 'v0');
  const error = await syncDevice(target, { root: { kind: 'netem', netem: { delay: 50_000_000 } }, child: null }).catch((e: unknown) => e);
  if (!isKernelError(error)) return t.fail(`expected a KernelError, got ${String(error)}`);
  if (error.code !== 'ENOENT') {
    t.comment(`this kernel has netem (${error.code}); the missing-module message is proven in the VM suite`);
    return;
  }
  t.match(error.message, /^netem is not available in this kernel \(load the sch_netem module\)/);
  // A kind change takes nodenet's root down first; the refused netem puts the tbf back.
  t.same(await tc(ns, 'v0'), before, 'tc shows the tbf exactly as before');
});
