// The mass-deletion guard's rule (lib/controller/mass-deletion-guard.ts): with a baseline of at
// least 10 objects, losing half or more of them without DELETED events holds their removal until
// they return, a DELETED event arrives, or a fresh list confirms them gone.
import t from 'tap';

import { MassDeletionGuard } from '../../lib/controller/mass-deletion-guard.js';

interface Obj {
  key: string;
  v: number;
}
const objs = (n: number, from = 0, v = 1): Obj[] => Array.from({ length: n }, (_, i) => ({ key: `ns/s${from + i}`, v }));
const keys = (list: readonly Obj[]) => list.map((o) => o.key);

function guardWith(baseline: Obj[]) {
  const guard = new MassDeletionGuard<Obj>((o) => o.key);
  guard.applied(guard.decide(baseline).objects);
  return guard;
}

t.test('an empty list after 100 objects holds every removal', async (t) => {
  const all = objs(100);
  const guard = guardWith(all);
  const d = guard.decide([]);
  t.equal(d.held.length, 100);
  t.same(keys(d.objects).sort(), keys(all).sort(), 'rendered as if all were still there');
});

t.test('below the thresholds, removals go through', async (t) => {
  const small = guardWith(objs(9));
  t.same(small.decide([]).held, [], 'a baseline of 9 is not "many"');
  const big = guardWith(objs(100));
  const d = big.decide(objs(51, 49));
  t.same(d.held, [], '49 of 100 vanished: less than half');
  t.equal(d.objects.length, 51);
  const half = guardWith(objs(100)).decide(objs(50, 50));
  t.equal(half.held.length, 50, 'exactly half is held');
});

t.test('DELETED events make removals real, however many', async (t) => {
  const guard = guardWith(objs(100));
  for (const o of objs(100)) guard.deleted(o.key);
  const d = guard.decide([]);
  t.same(d.held, []);
  t.same(d.objects, []);
});

t.test('a held object is released when it comes back, on a DELETED event, or by a fresh list', async (t) => {
  const all = objs(20);
  const guard = guardWith(all);
  const held = guard.decide([]);
  t.equal(held.held.length, 20);
  guard.applied(held.objects);

  // The cache recovers 5 (a good relist), one is deleted for real.
  guard.deleted('ns/s19');
  const partial = guard.decide(objs(5));
  t.equal(partial.held.length, 14, '20 - 5 back - 1 deleted');
  t.notOk(partial.held.includes('ns/s19'));
  guard.applied(partial.objects);

  // A later resync's fresh list: s5..s9 still exist (the cache is behind), the rest are gone.
  const { confirmed, stillListed } = guard.confirm(new Set(keys(objs(10))));
  t.same(stillListed, keys(objs(5, 5)).sort());
  t.equal(confirmed.length, 9);
  const after = guard.decide(objs(5));
  t.same(after.held, keys(objs(5, 5)).sort(), 'the still-listed ones stay held');
  t.same(keys(after.objects), [...keys(objs(5)), ...keys(objs(5, 5)).sort()]);
});

t.test('a held removal stays held while the counts change', async (t) => {
  const guard = guardWith(objs(20));
  guard.applied(guard.decide([]).objects);
  // New objects arrive while the 20 are still missing: the baseline grows, the 20 stay held.
  const d = guard.decide(objs(30, 100));
  t.equal(d.held.length, 20);
  t.equal(d.objects.length, 50, 'new objects are applied meanwhile');
});

t.test('held objects render as last applied; updates of present ones go through', async (t) => {
  const guard = guardWith(objs(10, 0, 1));
  const d = guard.decide(objs(2, 0, 2));
  t.same(d.objects.map((o) => o.v), [2, 2, 1, 1, 1, 1, 1, 1, 1, 1]);
});

t.test('nothing is held before the first apply', async (t) => {
  const guard = new MassDeletionGuard<Obj>((o) => o.key);
  t.same(guard.decide([]).held, []);
  t.throws(() => new MassDeletionGuard<Obj>((o) => o.key, { fraction: 0 }), RangeError);
});
