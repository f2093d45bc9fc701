// Cutting a long owned chain into segments. nf_tables keeps each chain's rules as one array that a
// commit rebuilds whole for every chain it touches: adding one rule to a 20,000-rule chain costs
// ~20 ms in the kernel, so a one-Service change at 10,000 Services would cost ~40 ms before any of
// nodenet's own work. A chain of segments (the parent jumping to each in order) keeps that cost to
// the few hundred rules of the segment that changed, plus the parent's short list of jumps.
//
// Jumping through segments is the same walk as the flat chain only when no rule leaves the chain
// early or replaces it: a `return` in a segment would return to the parent (which goes on with the
// next segment), a `goto` would come back to the parent instead of the parent's caller. A chain
// with either verdict stays flat.
//
// Where a segment ends is decided by the rules themselves (a rule whose content hashes to a set
// residue ends one, as content-defined chunking does), and a segment is named after the hash of its
// first rule: an edit moves no other segment's boundaries or names, so it changes only its own
// segment (two, when it is a boundary rule). Chains shorter than SEGMENT_FROM rules stay flat.
import * as b from '../build.js';
import { ruleKey } from './compare.js';
import { VERDICT } from './constants.js';
import { encodeNftRule, type NftRule } from './encode.js';
import type { WantedChain } from './plan.js';

/** Chains with at least this many rules are segmented. */
export const SEGMENT_FROM = 4096;
/** Rules per segment on average (a rule ends a segment with probability 1 / SEGMENT_MEAN). */
export const SEGMENT_MEAN = 256;
/** A segment is cut here at the latest, whatever the hashes say. */
export const SEGMENT_MAX = 2048;

const hashes = new WeakMap<NftRule, number>();

/**
 * FNV-1a over the rule's key: stable across runs and processes, so a restarted agent finds its
 * segments where it left them.
 */
export function ruleHash(rule: NftRule): number {
  let h = hashes.get(rule);
  if (h !== undefined) return h;
  const key = ruleKey(rule);
  h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  hashes.set(rule, h);
  return h;
}

/** Whether the rule returns or goes to another chain: in a segment it would leave only the segment. */
export function leavesEarly(rule: NftRule): boolean {
  return rule.exprs.some((e) => e.name === 'immediate' && (e.verdict === VERDICT.RETURN || e.verdict === VERDICT.GOTO));
}

// The parent's jump into a segment, remembered per name so its key is computed once.
const jumps = new Map<string, NftRule>();

function jumpTo(chain: string): NftRule {
  let rule = jumps.get(chain);
  if (!rule) {
    if (jumps.size >= 100_000) jumps.clear();
    // No address in it, so the family does not matter; the name is already the nft chain's.
    rule = encodeNftRule(b.rule({}, [], b.jump(chain)), { family: 'ipv4', chainName: (name) => name });
    jumps.set(chain, rule);
  }
  return rule;
}

/** What a caller that keeps per-rule facts of the chain already knows (aligned with its rules). */
export interface SegmentHints {
  /** ruleHash of each rule. */
  hashes: readonly number[];
  /** Whether any rule leaves early. */
  leaving: boolean;
  /** This chain's last result: segments that come out the same (name and rule objects) are reused. */
  previous?: readonly WantedChain[];
}

function sameRules(held: readonly NftRule[], rules: readonly NftRule[], start: number): boolean {
  for (let i = 0; i < held.length; i++) if (held[i] !== rules[start + i]) return false;
  return true;
}

/**
 * The chain as nft will hold it: itself when short (or when it returns or goes to), else the parent
 * holding only jumps, followed by its segments in order. With hints, an unchanged segment (and an
 * unchanged parent) is the very object of the last result, which lets the planner skip it whole.
 */
export function segmented(chain: WantedChain, hints?: SegmentHints): WantedChain[] {
  const rules = chain.rules;
  if (chain.base || rules.length < SEGMENT_FROM) return [chain];
  if (hints ? hints.leaving : rules.some(leavesEarly)) return [chain];
  const hashAt = hints ? (i: number) => hints.hashes[i]! : (i: number) => ruleHash(rules[i]!);
  const previous = new Map<string, WantedChain>();
  for (const s of hints?.previous?.slice(1) ?? []) previous.set(s.name, s);
  const segments: WantedChain[] = [];
  const used = new Map<string, number>();
  let start = 0;
  for (let i = 0; i < rules.length; i++) {
    const end = i === rules.length - 1 || hashAt(i) % SEGMENT_MEAN === 0 || i + 1 - start >= SEGMENT_MAX;
    if (!end) continue;
    const base = `${chain.name}.${hashAt(start).toString(16).padStart(8, '0')}`;
    const n = (used.get(base) ?? 0) + 1;
    used.set(base, n);
    const name = n === 1 ? base : `${base}-${n}`;
    const held = previous.get(name);
    segments.push(held && held.rules.length === i + 1 - start && sameRules(held.rules, rules, start) ? held : { name, base: null, rules: rules.slice(start, i + 1) });
    start = i + 1;
  }
  const parent = hints?.previous?.[0];
  const keep = parent !== undefined && parent.name === chain.name && parent.rules.length === segments.length && segments.every((s, i) => parent.rules[i] === jumpTo(s.name));
  return [keep ? parent : { name: chain.name, base: null, rules: segments.map((s) => jumpTo(s.name)) }, ...segments];
}
