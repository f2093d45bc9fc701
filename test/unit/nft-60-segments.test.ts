// Cutting long owned chains into segments (lib/kernel/netfilter/nft/segments.ts), without a kernel:
// read in order the segments are the chain, boundaries and names follow content (an edit or an
// insertion changes its own segment and no other), and what could leave a segment early keeps the
// chain flat.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import { encodeNftRule, type NftRule } from '../../lib/kernel/netfilter/nft/encode.js';
import { segmentParent } from '../../lib/kernel/netfilter/nft/layout.js';
import { SEGMENT_FROM, SEGMENT_MAX, segmented } from '../../lib/kernel/netfilter/nft/segments.js';
import type { WantedChain } from '../../lib/kernel/netfilter/nft/plan.js';
import type { RuleSpec } from '../../lib/kernel/netfilter/spec.js';

const NAME = 'nat-NODENET-EXTERNAL-PODS';
const enc = (r: RuleSpec): NftRule => encodeNftRule(r, { family: 'ipv4', chainName: (n) => `nat-${n}` });
const svc = (i: number, port = 80) => enc(b.rule({ destination: `198.18.${(i >> 8) & 255}.${i & 255}`, protocol: 'tcp' }, [b.comment(`s${i}`), b.tcp({ dport: port })], b.dnat('10.96.0.1', port)));
const chain = (rules: NftRule[]): WantedChain => ({ name: NAME, base: null, rules });

const flatten = (out: WantedChain[]) => {
  const byName = new Map(out.map((c) => [c.name, c]));
  return out[0]!.rules.flatMap((r) => {
    const target = r.exprs.find((e) => e.name === 'immediate')?.chain as string | undefined;
    return target && segmentParent(target) === NAME ? byName.get(target)!.rules : [r];
  });
};

t.test('a short chain is left alone', async (t) => {
  const c = chain(Array.from({ length: SEGMENT_FROM - 1 }, (_, i) => svc(i)));
  t.same(segmented(c), [c]);
  t.equal(segmented(c)[0], c, 'the very object');
});

t.test('a long chain: a parent of jumps, segments that read as the chain', async (t) => {
  const rules = Array.from({ length: 3 * SEGMENT_FROM }, (_, i) => svc(i));
  const out = segmented(chain(rules));
  t.equal(out[0]!.name, NAME, 'the parent first, under its own name');
  t.ok(out.length > 10, `${out.length - 1} segments`);
  t.ok(out.slice(1).every((s) => segmentParent(s.name) === NAME && s.base === null), 'segments named after the parent');
  t.equal(new Set(out.map((c) => c.name)).size, out.length, 'names unique');
  t.ok(out.slice(1).every((s) => s.rules.length <= SEGMENT_MAX), 'none longer than the cap');
  const flat = flatten(out);
  t.equal(flat.length, rules.length);
  t.ok(flat.every((r, i) => r === rules[i]), 'the same rules, in the same order');
  t.same(segmented(chain([...rules])), out, 'the same cut every time');
});

t.test('an edit or an insertion changes its own segment and leaves the others', async (t) => {
  const rules = Array.from({ length: 3 * SEGMENT_FROM }, (_, i) => svc(i));
  const before = segmented(chain(rules)).slice(1);
  const names = (cs: WantedChain[]) => new Set(cs.map((c) => c.name));
  for (const [what, changed] of [
    ['edited', rules.map((r, i) => (i === 5000 ? svc(5000, 8080) : r))],
    ['inserted', [...rules.slice(0, 7000), svc(99_999), ...rules.slice(7000)]],
    ['removed', rules.filter((_, i) => i !== 9000)],
  ] as const) {
    const after = segmented(chain([...changed])).slice(1);
    const gone = [...names(before)].filter((n) => !names(after).has(n));
    const same = after.filter((s) => {
      const old = before.find((o) => o.name === s.name);
      return old !== undefined && old.rules.length === s.rules.length && old.rules.every((r, i) => r === s.rules[i]);
    });
    t.ok(gone.length <= 2, `${what}: at most two segments renamed (${gone.length})`);
    t.ok(same.length >= after.length - 2, `${what}: all but at most two segments hold exactly what they held (${same.length} of ${after.length})`);
    t.ok(flatten([{ name: NAME, base: null, rules: segmented(chain([...changed]))[0]!.rules }, ...after]).every((r, i) => r === changed[i]), `${what}: still reads as the chain`);
  }
});

t.test('a return or a goto keeps the chain flat; equal rules still get distinct segment names', async (t) => {
  const rules = Array.from({ length: SEGMENT_FROM + 5 }, (_, i) => svc(i));
  for (const [what, r] of [
    ['return', enc(b.rule({ source: '10.0.0.0/8' }, [], b.returnTarget()))],
    ['goto', enc(b.rule({ source: '10.0.0.0/8' }, [], b.goTo('NODENET-OTHER')))],
  ] as const) {
    const c = chain([...rules.slice(0, 10), r, ...rules.slice(10)]);
    t.same(segmented(c), [c], `${what}: flat`);
  }
  const same = Array.from({ length: SEGMENT_FROM + 5 }, () => svc(1));
  const out = segmented(chain(same));
  t.equal(new Set(out.map((c) => c.name)).size, out.length, 'names unique although every rule is the same');
  t.ok(out.slice(1).some((s) => /-\d+$/.test(s.name)), 'told apart by a suffix');
});
