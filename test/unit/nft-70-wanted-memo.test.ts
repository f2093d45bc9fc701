// What the nftables backend remembers of each owned chain between applies (backend.ts ChainMemo):
// the rules two applies share by identity at a chain's ends keep their validation, encoding and
// segments. Whatever the edits, the result must equal a fresh computation; unchanged segments must
// be the very objects of the last apply (the planner skips them by identity); and nothing may be
// taken over for a rule that could have changed or for a check whose context changed.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import { deepFreeze } from '../../lib/kernel/netfilter/frozen.js';
import { forgetWantedChains, wantedChains } from '../../lib/kernel/netfilter/nft/backend.js';
import { SEGMENT_FROM } from '../../lib/kernel/netfilter/nft/segments.js';
import type { WantedChain } from '../../lib/kernel/netfilter/nft/plan.js';
import type { RuleSpec, TableState } from '../../lib/kernel/netfilter/spec.js';
import { RuleValidationError } from '../../lib/kernel/netfilter/validate.js';

const PODS = 'NODENET-EXTERNAL-PODS';
const HOST = 'NODENET-EXTERNAL-HOST';
const svc = (i: number, port = 80): RuleSpec =>
  b.rule({ destination: `198.18.${(i >> 8) & 255}.${i & 255}`, protocol: 'tcp' }, [b.comment(`s${i}`), b.tcp({ dport: port })], b.dnat('10.96.0.1', port));

const state = (pods: RuleSpec[], host: RuleSpec[] = [], from: 'PREROUTING' | 'POSTROUTING' = 'PREROUTING'): TableState => ({
  family: 'ipv4',
  table: 'nat',
  chains: [
    { name: PODS, rules: pods },
    { name: HOST, rules: host },
  ],
  jumps: [
    { chain: from, rule: deepFreeze(b.rule({}, [], b.jump(PODS))) },
    { chain: 'OUTPUT', rule: deepFreeze(b.rule({}, [], b.jump(HOST))) },
  ],
});

// A fresh computation, with the memo as it was before and after.
const fresh = (s: TableState): WantedChain[] => {
  forgetWantedChains();
  return wantedChains(s, 'NODENET-');
};

// A small seeded PRNG: the same edits every run.
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

t.test('random edits to a segmented chain: always what a fresh computation gives', async (t) => {
  for (const seed of [1, 2, 3]) {
    const random = prng(seed);
    let next = 100_000;
    let pods = Array.from({ length: SEGMENT_FROM + 1000 }, (_, i) => deepFreeze(svc(i)));
    const host = [deepFreeze(svc(0, 443))];
    forgetWantedChains();
    let last = wantedChains(state(pods, host), 'NODENET-');
    for (let step = 0; step < 25; step++) {
      const at = Math.floor(random() * pods.length);
      const kind = Math.floor(random() * 4);
      pods = [...pods];
      if (kind === 0) pods[at] = deepFreeze(svc(next++));
      else if (kind === 1) pods.splice(at, 0, deepFreeze(svc(next++)), deepFreeze(svc(next++)));
      else if (kind === 2) pods.splice(at, 1);
      else pods.splice(at, 3);
      const s = state(pods, host);
      const got = wantedChains(s, 'NODENET-');
      const prev = new Map(last.map((c) => [c.name, c]));
      const reused = got.filter((c) => prev.get(c.name) === c).length;
      t.same(got, fresh(s), `seed ${seed} step ${step}: equal to a fresh computation`);
      t.ok(reused >= got.length - 4, `seed ${seed} step ${step}: ${reused} of ${got.length} chains are last apply's objects`);
      // fresh() left the memo as a first apply of this state would; the same state again must
      // then come back as those very objects (base chains are rebuilt, they hold a rule or two).
      const rebuilt = wantedChains(state(pods.slice(), host), 'NODENET-');
      const again = wantedChains(s, 'NODENET-');
      t.ok(again.length === rebuilt.length && again.every((c, i) => c.base !== null || c === rebuilt[i]), 'the same state again: the same objects');
      last = again;
    }
  }
});

t.test('an unchanged state gives the very same chains; the unchanged segments survive an edit', async (t) => {
  const pods = Array.from({ length: 3 * SEGMENT_FROM }, (_, i) => deepFreeze(svc(i)));
  forgetWantedChains();
  const first = wantedChains(state(pods), 'NODENET-');
  const second = wantedChains(state([...pods]), 'NODENET-');
  t.ok(second.length > 10, `${second.length} chains`);
  t.ok(
    second.every((c, i) => c.base !== null || c === first[i]),
    'every owned chain and segment is the same object (a new array of the same rules)',
  );
  const edited = [...pods];
  edited[6000] = deepFreeze(svc(6000, 8080));
  const third = wantedChains(state(edited), 'NODENET-');
  const changed = third.filter((c) => c.base === null && !second.includes(c));
  // Rule 6000 neither starts nor ends a segment: no name changes, so the parent's jumps stay too.
  t.equal(changed.length, 1, `only the edited segment is new (${changed.map((c) => c.name).join(', ')})`);
  const old = second.find((c) => c.name === changed[0]?.name);
  t.equal(old?.rules.filter((r, i) => r !== changed[0]!.rules[i]).length, 1, 'under the same name, with one rule replaced');
  t.same(third, fresh(state(edited)));
});

t.test('a mutable rule is never taken over, even as the same object', async (t) => {
  const pods = Array.from({ length: 10 }, (_, i) => deepFreeze(svc(i)));
  const mutable = svc(50);
  forgetWantedChains();
  const one = wantedChains(state([...pods, mutable]), 'NODENET-');
  (mutable.target as { options: { ports: { from: number; to: number } } }).options.ports = { from: 9999, to: 9999 };
  const two = wantedChains(state([...pods, mutable]), 'NODENET-');
  t.not(two.find((c) => c.name === 'nat-NODENET-EXTERNAL-PODS'), one.find((c) => c.name === 'nat-NODENET-EXTERNAL-PODS'), 'the chain is rebuilt');
  t.same(two, fresh(state([...pods, mutable])), 'and written as edited');
});

t.test('checks whose context changed run again over the shared rules', async (t) => {
  const pods = Array.from({ length: 50 }, (_, i) => deepFreeze(svc(i)));
  forgetWantedChains();
  t.doesNotThrow(() => wantedChains(state(pods), 'NODENET-'), 'DNAT reached from PREROUTING');
  t.throws(() => wantedChains(state(pods, [], 'POSTROUTING'), 'NODENET-'), RuleValidationError, 'the same rules reached from POSTROUTING: refused');
  // A jump between owned chains, shared by identity, whose target leaves the state.
  const toHost = deepFreeze(b.rule({}, [], b.jump(HOST)));
  const withJump = [...pods, toHost];
  t.doesNotThrow(() => wantedChains(state(withJump), 'NODENET-'), 'the jump to a chain of the state');
  const without: TableState = { ...state(withJump), chains: [{ name: PODS, rules: withJump }], jumps: [state(withJump).jumps[0]!] };
  t.throws(() => wantedChains(without, 'NODENET-'), /not one of nodenet's chains/, 'the same jump once its target is gone: refused');
});
