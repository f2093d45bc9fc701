// When a rule in the kernel is the rule nodenet wants. The encoder writes exactly the attributes
// the kernel dumps back (test/kernel/97.nft-backend.test.ts proves it per expression), so equality
// is a plain compare of every attribute, with one exception: a counter's values, which the traffic
// changes.
import type { RawNftExpr } from '../../native.js';

function value(v: string | number | bigint | Buffer): string {
  if (Buffer.isBuffer(v)) return `x${v.toString('hex')}`;
  if (typeof v === 'bigint') return `n${v}`;
  if (typeof v === 'number') return `#${v}`;
  return `s${JSON.stringify(v)}`;
}

/** One expression as a stable string (attributes sorted by name; counter values left out). */
export function exprKey(e: RawNftExpr): string {
  const keys = Object.keys(e)
    .filter((k) => k !== 'name' && !(e.name === 'counter' && (k === 'packets' || k === 'bytes')))
    .sort();
  return `${e.name}(${keys.map((k) => `${k}=${value(e[k]!)}`).join(',')})`;
}

// Wanted rules are the same (remembered) objects from one apply to the next; their keys are too.
const keys = new WeakMap<object, string>();

/** A rule (expressions and userdata) as a stable string: equal strings, equal rules. */
export function ruleKey(rule: { exprs: readonly RawNftExpr[]; userdata: Buffer | null | undefined }): string {
  const known = keys.get(rule);
  if (known !== undefined) return known;
  const key = `${rule.exprs.map(exprKey).join(' ')}|${rule.userdata && rule.userdata.length ? rule.userdata.toString('hex') : ''}`;
  keys.set(rule, key);
  return key;
}

export function sameRule(a: { exprs: readonly RawNftExpr[]; userdata: Buffer | null | undefined }, b: { exprs: readonly RawNftExpr[]; userdata: Buffer | null | undefined }): boolean {
  return ruleKey(a) === ruleKey(b);
}

/** Gives `rule` the key `like` has, without computing it (the same expressions, known to be equal). */
export function shareKey(rule: object, like: { exprs: readonly RawNftExpr[]; userdata: Buffer | null | undefined }): void {
  keys.set(rule, ruleKey(like));
}
