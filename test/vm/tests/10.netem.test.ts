// Stock-kernel stage (inside test/vm/run): netem installed through the addon really delays and
// drops packets between two namespaces, and the kernel reports back exactly what was set.
import t from 'tap';

import { qdiscs } from '../../../lib/kernel/index.js';
import { linkedPair as pair, type TestNetns } from '../../helpers/netns.js';
import { runAllowingFailure } from '../../helpers/exec.js';

/** Average ping RTT in ms, or null when nothing came back. */
async function avgRtt(ns: TestNetns, count = 5): Promise<number | null> {
  const r = await runAllowingFailure('ip', ['netns', 'exec', ns.name, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', '-q', '10.77.0.2']);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return m ? Number(m[1]) : null;
}

t.test('netem delay raises RTT by the delay; loss 100% stops traffic; removal restores', async (t) => {
  const { a } = await pair(t);
  const base = await avgRtt(a);
  t.not(base, null, `baseline ping works (${base} ms)`);
  const target = { netns: a.path, device: 'va', handle: '1:' };

  await qdiscs.replace(target, { kind: 'netem', netem: { delay: 100_000_000 } });
  const delayed = await avgRtt(a);
  t.ok(delayed !== null && delayed - (base ?? 0) >= 80, `RTT ${delayed} ms is at least 0.8 × 100 ms above ${base} ms`);

  await qdiscs.replace(target, { kind: 'netem', netem: { loss: 100 } });
  t.equal(await avgRtt(a, 3), null, 'loss 100%: no reply');

  await qdiscs.remove({ netns: a.path, device: 'va' });
  const restored = await avgRtt(a);
  t.ok(restored !== null && restored < 50, `restored (${restored} ms)`);
  t.same((await qdiscs.list({ netns: a.path, device: 'va' })).map((q) => q.kind), ['noqueue']);
});

interface TcNetem {
  kind: string;
  handle: string;
  options: {
    limit: number;
    delay?: { delay: number; jitter: number; correlation: number };
    'loss-random'?: { loss: number; correlation: number };
    duplicate?: { duplicate: number; correlation: number };
    reorder?: { reorder: number; correlation: number };
    corrupt?: { corrupt: number; correlation: number };
    rate?: { rate: number; packetoverhead: number; cellsize: number; celloverhead: number };
    ecn?: boolean;
    gap: number;
  };
}

t.test('tc decodes every parameter as nodenet reports it', async (t) => {
  const { a } = await pair(t);
  const set = {
    delay: 100_000_000,
    jitter: 10_000_000,
    delayCorrelation: 25,
    loss: 1,
    lossCorrelation: 30,
    duplicate: 0.1,
    duplicateCorrelation: 5,
    corrupt: 0.2,
    corruptCorrelation: 7,
    reorder: 25,
    reorderCorrelation: 50,
    gap: 5,
    rate: 8_000_000,
    packetOverhead: 14,
    cellSize: 64,
    cellOverhead: 2,
    limit: 2000,
    ecn: true,
  };
  await qdiscs.replace({ netns: a.path, device: 'va', handle: '1:' }, { kind: 'netem', netem: set });
  const [ours] = await qdiscs.list({ netns: a.path, device: 'va' });
  t.same(ours?.netem, { ...set, lossModel: 'random' }, 'nodenet reads back what it set');
  const [tc] = JSON.parse(await a.exec('tc', ['-j', 'qdisc', 'show', 'dev', 'va'])) as TcNetem[];
  const o = tc!.options;
  const pct = (x: number | undefined) => Math.round((x ?? 0) * 1e8) / 1e6; // tc prints fractions
  t.equal(tc?.kind, 'netem');
  t.equal(tc?.handle, '1:');
  t.equal(o.limit, ours?.netem?.limit);
  t.equal(Math.round((o.delay?.delay ?? 0) * 1e9), ours?.netem?.delay, 'delay');
  t.equal(Math.round((o.delay?.jitter ?? 0) * 1e9), ours?.netem?.jitter, 'jitter');
  t.equal(pct(o.delay?.correlation), ours?.netem?.delayCorrelation, 'delay correlation');
  t.equal(pct(o['loss-random']?.loss), ours?.netem?.loss, 'loss');
  t.equal(pct(o['loss-random']?.correlation), ours?.netem?.lossCorrelation, 'loss correlation');
  t.equal(pct(o.duplicate?.duplicate), ours?.netem?.duplicate, 'duplicate');
  t.equal(pct(o.duplicate?.correlation), ours?.netem?.duplicateCorrelation, 'duplicate correlation');
  t.equal(pct(o.corrupt?.corrupt), ours?.netem?.corrupt, 'corrupt');
  t.equal(pct(o.corrupt?.correlation), ours?.netem?.corruptCorrelation, 'corrupt correlation');
  t.equal(pct(o.reorder?.reorder), ours?.netem?.reorder, 'reorder');
  t.equal(pct(o.reorder?.correlation), ours?.netem?.reorderCorrelation, 'reorder correlation');
  t.equal(o.gap, ours?.netem?.gap, 'gap');
  t.equal((o.rate?.rate ?? 0) * 8, ours?.netem?.rate, 'rate (tc: bytes/s)');
  t.equal(o.rate?.packetoverhead, ours?.netem?.packetOverhead);
  t.equal(o.rate?.cellsize, ours?.netem?.cellSize);
  t.equal(o.rate?.celloverhead, ours?.netem?.cellOverhead);
  t.equal(o.ecn ?? false, ours?.netem?.ecn, 'ecn');

  await qdiscs.replace({ netns: a.path, device: 'va', handle: '1:' }, { kind: 'netem', netem: { delay: 5_000_000_000 } });
  const [plain] = await qdiscs.list({ netns: a.path, device: 'va' });
  t.same(plain?.netem, { ...Object.fromEntries(Object.keys(set).map((k) => [k, 0])), delay: 5_000_000_000, limit: 1000, ecn: false, lossModel: 'random' },
    'a replace means exactly the new parameters: nothing lingers from before');
});
