// Writing nodenet's part of a legacy iptables table.
import { kernelCall } from '../errors.js';
import type { NetnsOption } from '../links.js';
import { native } from '../native.js';
import { encodeRule, type EncodedRule } from './encode.js';
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
}

function encodeAt(rule: RuleSpec, state: TableState, where: string): EncodedRule {
  try {
    return encodeRule(rule, state.family);
  } catch (e) {
    if (e instanceof RangeError) throw new RuleValidationError(`${state.table} ${where}: ${e.message}`);
    throw e;
  }
}

async function run(state: TableState, options: ApplyOptions, dryRun: boolean): Promise<ApplyResult> {
  const ownedPrefix = options.ownedPrefix ?? OWNED_PREFIX;
  validateTableState(state, ownedPrefix);
  const spec = {
    family: state.family === 'ipv4' ? (4 as const) : (6 as const),
    table: state.table,
    ownedPrefix,
    chains: state.chains.map((c) => ({ name: c.name, rules: c.rules.map((r, i) => encodeAt(r, state, `${c.name} rule ${i + 1}`)) })),
    jumps: state.jumps.map((j) => ({ chain: j.chain, rule: encodeAt(j.rule, state, `${j.chain} (jump)`) })),
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
