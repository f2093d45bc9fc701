// Writing nodenet's part of a legacy iptables table.
import { kernelCall } from '../errors.js';
import type { NetnsOption } from '../links.js';
import { native, type RawApplySpec } from '../native.js';
import { RuleWireWriter } from './encode.js';
import type { RuleSpec, TableState } from './spec.js';
import { RuleValidationError, validateTableState } from './validate.js';

/** nodenet's chains are named NODENET-*; a jump into one is the only thing it adds elsewhere. */
export const OWNED_PREFIX = 'NODENET-';

export interface ApplyOptions extends NetnsOption {
  /** Chains starting with this are owned: their content is replaced and unwanted ones are removed. */
  ownedPrefix?: string;
  /** How long to wait for the xtables lock before failing with ETIMEDOUT (default 5000 ms). */
  lockTimeoutMs?: number;
}

export interface ApplyResult {
  /** What differed, one line each; empty when the table already was as asked. */
  changes: string[];
  /** Whether a commit happened (never when changes is empty, never for a diff). */
  committed: boolean;
  /** Commits tried: more than 1 when a writer that ignores the lock changed the table meanwhile. */
  attempts: number;
  lockWaitMs: number;
  /** How long the xtables lock was held; other writers waited at most this long. */
  lockHoldMs: number;
  /**
   * Legacy iptables only (undefined through nftables): time spent reading the table inside the
   * lock (libiptc's `iptc_init`: the kernel copies the whole blob out and libiptc parses it),
   * summed over attempts. Part of lockHoldMs; 0 when it was never read (no such table and nothing
   * wanted in it).
   */
  readMs?: number;
  /**
   * Legacy iptables only (undefined through nftables): time spent in libiptc's `iptc_commit`,
   * summed over attempts; 0 when no commit was tried. This is the kernel's own replacement of
   * the table (the new blob assembled, `IPT_SO_SET_REPLACE`, the counters handed back), the floor
   * no writer of a legacy table can go below. Part of lockHoldMs.
   */
  commitMs?: number;
}

/**
 * A chain's rules (or one jump) in the addon's wire form (RawApplySpec): one Buffer for a whole
 * chain instead of an object per rule, match and target, whose every property the addon would
 * otherwise have to fetch and copy one N-API call at a time (at 4,000 rules that cost more than the
 * kernel's commit). The layout is RuleWireWriter's. A rule iptables would refuse is reported first;
 * then the first that cannot be framed.
 */
function pack(w: RuleWireWriter, rules: readonly RuleSpec[], table: string, where: (i: number) => string): Buffer {
  w.begin(rules.length);
  let problem: string | null = null;
  let problemAt = 0;
  for (let i = 0; i < rules.length; i++) {
    let p: string | null;
    try {
      p = w.rule(rules[i]!);
    } catch (e) {
      if (e instanceof RangeError) throw new RuleValidationError(`${table} ${where(i)}: ${e.message}`);
      throw e;
    }
    if (p !== null && problem === null) {
      problem = p;
      problemAt = i;
    }
  }
  if (problem !== null) throw new RuleValidationError(`${table} ${where(problemAt)}: ${problem}`);
  return w.finish();
}

async function run(state: TableState, options: ApplyOptions, dryRun: boolean): Promise<ApplyResult> {
  const ownedPrefix = options.ownedPrefix ?? OWNED_PREFIX;
  validateTableState(state, ownedPrefix);
  const w = new RuleWireWriter(state.family);
  const chains = state.chains.map((c) => ({ name: c.name, count: c.rules.length, rules: pack(w, c.rules, state.table, (i) => `${c.name} rule ${i + 1}`) }));
  const jumps = state.jumps.map((j) => ({ chain: j.chain, rule: pack(w, [j.rule], state.table, () => `${j.chain} (jump)`) }));
  const spec: RawApplySpec = {
    family: state.family === 'ipv4' ? 4 : 6,
    table: state.table,
    ownedPrefix,
    chains,
    jumps,
    lockTimeoutMs: options.lockTimeoutMs ?? 5000,
    dryRun,
  };
  return kernelCall(native().applyTable(spec, options.netns));
}

/**
 * Makes nodenet's chains in one table exactly `state.chains`, and the jumps into them from
 * builtin chains exactly `state.jumps`: under the xtables lock, reading the table fresh, one commit
 * or none when nothing differs. A missing jump is inserted first in its chain; one already there is
 * left where it is. Owned chains not in the state are removed. Nothing else is touched.
 * Rejects with RuleValidationError (before touching the kernel) or KernelError.
 */
export function apply(state: TableState, options: ApplyOptions = {}): Promise<ApplyResult> {
  return run(state, options, false);
}

/** What apply would change, changing nothing (the table is still read under the lock). */
export function diff(state: TableState, options: ApplyOptions = {}): Promise<ApplyResult> {
  return run(state, options, true);
}
