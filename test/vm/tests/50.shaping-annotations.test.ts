// Stock-kernel stage: netem by pod annotation, through the shaping reconcile (annotation → model →
// resolver → qdiscs) on a pod namespace joined to its node by a veth. Delay shows in the RTT, loss
// 100% stops traffic, removal restores it; tc decodes what landed to the parameters nodenet
// reports, attribute by attribute; netem and a cap together make netem 6e6e: with tbf 6e6f:
// under it; a change keeps the qdisc (its counters go on) and a distribution back to uniform
// re-creates it (they start again).
import t from 'tap';

import { qdiscs } from '../../../lib/kernel/index.js';
import { runAllowingFailure } from '../../helpers/exec.js';
import { makeNetns, type TestNetns } from '../../helpers/netns.js';
import { nodeAddress, podSandbox, podShaper, type PodSandbox } from '../../helpers/shaping.js';
import { compareNetemWithTc, EVERY_NETEM_PARAMETER, type TcQdisc } from '../../helpers/tc-netem.js';

/** Average ping RTT in ms from the pod to the node, or null when nothing came back. */
async function avgRtt(from: TestNetns, to: string, count = 5): Promise<number | null> {
  const r = await runAllowingFailure('ip', ['netns', 'exec', from.name, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', '-q', to]);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) : null;
}

async function tc(ns: TestNetns, dev: string): Promise<TcQdisc[]> {
  return JSON.parse(await ns.exec('tc', ['-s', '-j', 'qdisc', 'show', 'dev', dev])) as TcQdisc[];
}

async function setup(t: Parameters<typeof makeNetns>[0]): Promise<{ node: TestNetns; box: PodSandbox; nodeIP: string }> {
  const node = await makeNetns(t);
  const box = await podSandbox(t, node, '10.244.1.50');
  return { node, box, nodeIP: await nodeAddress(node, box) };
}

t.test('egress netem by annotation: delay, loss 100%, removal', async (t) => {
  const { node, box, nodeIP } = await setup(t);
  const shaper = podShaper(node);
  const base = await avgRtt(box.pod, nodeIP);
  t.not(base, null, `baseline ping works (${base} ms)`);

  const shaped = await shaper.apply(box, { 'nodenet.io/egress-netem': 'delay 100ms' });
  t.match(shaped, [{ type: 'Normal', reason: 'Shaped', message: /egress on eth0 in the pod: netem delay 100ms/ }]);
  const delayed = await avgRtt(box.pod, nodeIP);
  t.ok(delayed !== null && delayed - (base ?? 0) >= 80, `RTT ${delayed} ms is at least 0.8 × 100 ms above ${base} ms`);
  t.match((await tc(box.pod, 'eth0'))[0], { kind: 'netem', handle: '6e6e:', root: true });
  t.same(await shaper.apply(box, { 'nodenet.io/egress-netem': 'delay 100ms' }), [], 'the same annotation again: the kernel already matches, no change, no Event');

  await shaper.apply(box, { 'nodenet.io/egress-netem': 'loss 100%' });
  t.equal(await avgRtt(box.pod, nodeIP, 3), null, 'loss 100%: no reply');

  const removed = await shaper.apply(box, {});
  t.match(removed, [{ reason: 'ShapingRemoved' }]);
  const restored = await avgRtt(box.pod, nodeIP);
  t.ok(restored !== null && restored < 50, `restored (${restored} ms)`);
  t.same((await tc(box.pod, 'eth0')).map((q) => [q.kind, q.handle]), [['noqueue', '0:']], 'the kernel default is back');
});

t.test('ingress netem on the host-side veth; the namespace gate', async (t) => {
  const { node, box, nodeIP } = await setup(t);
  const shaper = podShaper(node);
  const base = (await avgRtt(box.pod, nodeIP)) ?? 0;
  const refused = await shaper.apply(box, { 'nodenet.io/ingress-netem': 'delay 60ms' }, { gate: false });
  t.match(refused, [{ type: 'Warning', reason: 'NetemNotEnabled' }]);
  t.same((await tc(node, box.hostVeth)).map((q) => q.kind), ['noqueue'], 'nothing behind a closed gate');

  await shaper.apply(box, { 'nodenet.io/ingress-netem': 'delay 60ms' });
  t.match((await tc(node, box.hostVeth))[0], { kind: 'netem', handle: '6e6e:' }, 'netem on the host veth');
  const delayed = await avgRtt(box.pod, nodeIP);
  t.ok(delayed !== null && delayed - base >= 48, `RTT ${delayed} ms is at least 0.8 × 60 ms above ${base} ms`);

  // Closing the gate later takes the netem away again.
  await shaper.apply(box, { 'nodenet.io/ingress-netem': 'delay 60ms' }, { gate: false });
  t.same((await tc(node, box.hostVeth)).map((q) => q.kind), ['noqueue'], 'gate closed: netem removed');
});

t.test('tc decodes every parameter as nodenet reports it', async (t) => {
  const { node, box } = await setup(t);
  const shaper = podShaper(node);
  await shaper.apply(box, {
    'nodenet.io/egress-netem': 'delay 100ms 10ms 25% loss 1% 30% duplicate 0.1% 5% corrupt 0.2% 7% reorder 25% 50% gap 5 rate 8mbit 14 64 2 limit 2000 ecn',
  });
  const [ours] = (await qdiscs.list({ netns: box.pod.path, device: 'eth0' })).filter((q) => q.parent === 'root');
  t.same(ours?.netem, { ...EVERY_NETEM_PARAMETER, lossModel: 'random' }, 'nodenet reports the annotation');
  const [w] = await tc(box.pod, 'eth0');
  t.match(w, { kind: 'netem', handle: '6e6e:' });
  compareNetemWithTc(t, w, ours?.netem);
});

t.test('netem with a cap: tbf under netem; a change keeps the qdisc, back to uniform re-creates it', async (t) => {
  const { node, box, nodeIP } = await setup(t);
  const shaper = podShaper(node);
  const first = await shaper.apply(box, { 'nodenet.io/egress-netem': 'delay 20ms 5ms distribution normal', 'kubernetes.io/egress-bandwidth': '10M' });
  t.match(first, [{ type: 'Normal', reason: 'Shaped' }], 'the first apply shapes');
  const both = await tc(box.pod, 'eth0');
  t.match(
    both.map((q) => ({ kind: q.kind, handle: q.handle, parent: q.parent ?? 'root' })),
    [
      { kind: 'netem', handle: '6e6e:', parent: 'root' },
      { kind: 'tbf', handle: '6e6f:', parent: '6e6e:1' },
    ],
    'netem at the root, the tbf in its class',
  );

  await avgRtt(box.pod, nodeIP, 3);
  const counted = (await tc(box.pod, 'eth0'))[0]?.packets ?? 0;
  t.ok(counted >= 3, `netem counted the pings (${counted})`);

  // Another delay, the same distribution: changed in place, the counters go on.
  const changed = await shaper.apply(box, { 'nodenet.io/egress-netem': 'delay 30ms 5ms distribution normal', 'kubernetes.io/egress-bandwidth': '10M' });
  t.match(changed, [{ reason: 'Shaped', message: /netem delay 30ms 5ms distribution normal/ }]);
  const after = await tc(box.pod, 'eth0');
  t.ok((after[0]?.packets ?? 0) >= counted, `same qdisc: counter ${after[0]?.packets} kept`);
  t.equal(Math.round((after[0]?.options.delay?.delay ?? 0) * 1e3), 30, 'the new delay');

  // Back to uniform jitter: the kernel cannot drop a distribution table in place. The new qdisc's
  // counter restarts, but not necessarily at 0: the pod's neighbour entry for the node may send an
  // ARP probe at any moment after the pings, so the test compares with a count well above that.
  await avgRtt(box.pod, nodeIP, 10);
  const before = (await tc(box.pod, 'eth0'))[0]?.packets ?? 0;
  t.ok(before >= counted + 10, `the kept qdisc counted 10 more pings (${before})`);
  await shaper.apply(box, { 'nodenet.io/egress-netem': 'delay 30ms 5ms', 'kubernetes.io/egress-bandwidth': '10M' });
  const recreated = await tc(box.pod, 'eth0');
  t.ok((recreated[0]?.packets ?? 0) <= 2, `a new qdisc: its counter starts again (${recreated[0]?.packets}, was ${before})`);
  t.match(recreated.map((q) => q.kind), ['netem', 'tbf'], 'still netem with the cap under it');

  // The cap alone: netem goes, tbf becomes the root.
  await shaper.apply(box, { 'kubernetes.io/egress-bandwidth': '10M' });
  t.match((await tc(box.pod, 'eth0')).map((q) => [q.kind, q.handle]), [['tbf', '6e6e:']]);
});
