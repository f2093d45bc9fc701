// Stock-kernel stage (inside test/vm/run): netem installed through the addon really delays and
// drops packets between two namespaces, and the kernel reports back exactly what was set.
import t from 'tap';

import { qdiscs } from '../../../lib/kernel/index.js';
import { linkedPair as pair, type TestNetns } from '../../helpers/netns.js';
import { runAllowingFailure } from '../../helpers/exec.js';
import { compareNetemWithTc, EVERY_NETEM_PARAMETER, type TcQdisc } from '../../helpers/tc-netem.js';

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

t.test('tc decodes every parameter as nodenet reports it', async (t) => {
  const { a } = await pair(t);
  const set = EVERY_NETEM_PARAMETER;
  await qdiscs.replace({ netns: a.path, device: 'va', handle: '1:' }, { kind: 'netem', netem: set });
  const [ours] = await qdiscs.list({ netns: a.path, device: 'va' });
  t.same(ours?.netem, { ...set, lossModel: 'random' }, 'nodenet reads back what it set');
  const [tc] = JSON.parse(await a.exec('tc', ['-j', 'qdisc', 'show', 'dev', 'va'])) as TcQdisc[];
  t.equal(tc?.kind, 'netem');
  t.equal(tc?.handle, '1:');
  compareNetemWithTc(t, tc, ours?.netem);

  await qdiscs.replace({ netns: a.path, device: 'va', handle: '1:' }, { kind: 'netem', netem: { delay: 5_000_000_000 } });
  const [plain] = await qdiscs.list({ netns: a.path, device: 'va' });
  t.same(plain?.netem, { ...Object.fromEntries(Object.keys(set).map((k) => [k, 0])), delay: 5_000_000_000, limit: 1000, ecn: false, lossModel: 'random' },
    'a replace means exactly the new parameters: nothing lingers from before');
});
