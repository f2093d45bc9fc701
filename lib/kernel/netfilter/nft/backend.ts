// The nftables backend: nodenet's part of one legacy table, written into nodenet's own nft table
// (layout.ts says where and why) through the addon's nf_tables batch API, never through `nft`.
//
// One apply: validate and encode everything first (a bad state never reaches the kernel), read
// nodenet's table once, plan the one batch that makes it what is wanted (plan.ts), and commit it
// against the generation that dump was read at. Another writer committing in between makes the
// kernel refuse the whole batch with ERESTART; then the table is read again and the plan redone, a
// bounded number of times. Nothing differs, nothing is committed. nf_tables has no xtables lock:
// lockWaitMs is 0 and lockHoldMs is the time spent in commits.
import { performance } from 'node:perf_hooks';

import { isKernelError, kernelCall, KernelError } from '../../errors.js';
import { native, type RawNftCommitRequest, type RawNftDump, type RawNftDumpRequest } from '../../native.js';
import { OWNED_PREFIX, type ApplyOptions, type ApplyResult } from '../apply.js';
import type { NetfilterBackend } from '../backend.js';
import type { RuleSpec, TableState } from '../spec.js';
import { RuleValidationError, validateTableState } from '../validate.js';
import { encodeNftRule, type NftRule } from './encode.js';
import { baseChainName, baseChainSpec, NFT_LEGACY_TABLES, NFT_TABLE, nftFamily, nftFamilyName, ownedChainName } from './layout.js';
import { planNft, type NftPlan, type WantedChain } from './plan.js';

/** The two kernel calls the backend makes; tests substitute them. */
export interface NftKernel {
  dump(request: RawNftDumpRequest, netns?: string): Promise<RawNftDump>;
  commit(request: RawNftCommitRequest, netns?: string): Promise<void>;
}

export const nativeNftKernel: NftKernel = {
  dump: (request, netns) => kernelCall(native().nftDump(request, netns)),
  commit: (request, netns) => kernelCall(native().nftCommit(request, netns)),
};

export interface NftApplyOptions extends ApplyOptions {
  /** Commits tried before giving up when other writers keep changing the ruleset (default 20). */
  maxAttempts?: number;
  /** Runs after each plan, just before its commit (tests use it to change the ruleset meanwhile). */
  beforeCommit?: (attempt: number) => Promise<void> | void;
  /** Default: the addon. */
  kernel?: NftKernel;
}

export const DEFAULT_MAX_ATTEMPTS = 20;

// The agent re-renders its whole state on every change and resync, and nearly every rule is one
// it encoded last time: encodings are remembered by the rule's content (bounded, dropped whole
// when full), so a resync spends its time reading the kernel, not re-encoding.
const ENCODED_MAX = 100_000;
const encoded = new Map<string, NftRule>();

function encodeAt(rule: RuleSpec, state: TableState, where: string): NftRule {
  const key = `${state.family} ${state.table} ${JSON.stringify(rule, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`;
  const known = encoded.get(key);
  if (known) return known;
  try {
    const result = encodeNftRule(rule, { family: state.family, chainName: (name) => ownedChainName(state.table, name) });
    if (encoded.size >= ENCODED_MAX) encoded.clear();
    encoded.set(key, result);
    return result;
  } catch (e) {
    if (e instanceof RangeError) throw new RuleValidationError(`${state.table} ${where}: ${e.message}`);
    throw e;
  }
}

/** Everything the state asks for, as nft chains; throws RuleValidationError before any kernel call. */
export function wantedChains(state: TableState, ownedPrefix: string): WantedChain[] {
  validateTableState(state, ownedPrefix);
  if (!NFT_LEGACY_TABLES.includes(state.table)) {
    throw new RuleValidationError(`table ${state.table}: the nftables backend lays out ${NFT_LEGACY_TABLES.join(', ')}`);
  }
  const base = new Map<string, WantedChain>();
  for (const j of state.jumps) {
    let chain = base.get(j.chain);
    if (!chain) {
      const spec = baseChainSpec(state.table, j.chain);
      if (!spec) throw new RuleValidationError(`jump from ${j.chain}: not a builtin chain of ${state.table}`);
      chain = { name: baseChainName(state.table, j.chain), base: spec, rules: [] };
      base.set(j.chain, chain);
    }
    chain.rules.push(encodeAt(j.rule, state, `${j.chain} (jump)`));
  }
  const owned = state.chains.map((c) => ({
    name: ownedChainName(state.table, c.name),
    base: null,
    rules: c.rules.map((r, i) => encodeAt(r, state, `${c.name} rule ${i + 1}`)),
  }));
  // Base chains first: `nft list` then reads top-down, from where packets enter to where they jump,
  // as iptables-save lists builtin chains first.
  return [...base.values(), ...owned];
}

async function readTable(kernel: NftKernel, state: TableState, netns: string | undefined): Promise<RawNftDump> {
  return kernel.dump({ family: nftFamily(state.family), table: NFT_TABLE, rules: true }, netns);
}

async function run(state: TableState, options: NftApplyOptions, dryRun: boolean): Promise<ApplyResult> {
  const ownedPrefix = options.ownedPrefix ?? OWNED_PREFIX;
  const wanted = wantedChains(state, ownedPrefix);
  const kernel = options.kernel ?? nativeNftKernel;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const plan = (dump: RawNftDump): NftPlan => planNft({ family: state.family, table: state.table, ownedPrefix, wanted, dump });
  let attempts = 0;
  let inCommit = 0;
  for (;;) {
    const dump = await readTable(kernel, state, options.netns);
    const { ops, changes } = plan(dump);
    if (ops.length === 0 || dryRun) return { changes, committed: false, attempts, lockWaitMs: 0, lockHoldMs: inCommit };
    attempts++;
    await options.beforeCommit?.(attempts);
    const started = performance.now();
    try {
      await kernel.commit({ generation: dump.generation, ops }, options.netns);
      inCommit += performance.now() - started;
      return { changes, committed: true, attempts, lockWaitMs: 0, lockHoldMs: inCommit };
    } catch (error) {
      inCommit += performance.now() - started;
      if (!isKernelError(error) || error.code !== 'ERESTART') throw error;
      if (attempts >= maxAttempts) {
        throw new KernelError({
          message: `${nftFamilyName(state.family)} ${NFT_TABLE} (${state.table}): the nf_tables ruleset changed under each of ${attempts} commits; other writers never paused long enough (${error.message})`,
          code: error.code,
          errno: error.errno,
          op: error.op,
          object: error.object,
          netns: error.netns,
          extack: error.extack,
        });
      }
    }
  }
}

/**
 * Makes legacy table `state.table`'s part of nodenet's nft table (`ip nodenet` / `ip6 nodenet`)
 * exactly `state`: one batch, or none when nothing differs. Other tables and other legacy tables'
 * chains are not touched; the table is created when needed and deleted when nothing is left in it.
 * Rejects with RuleValidationError (before touching the kernel) or KernelError.
 */
export function applyNft(state: TableState, options: NftApplyOptions = {}): Promise<ApplyResult> {
  return run(state, options, false);
}

/** What applyNft would change, changing nothing. */
export function diffNft(state: TableState, options: NftApplyOptions = {}): Promise<ApplyResult> {
  return run(state, options, true);
}

/** nftables through the addon: nodenet's own `ip`/`ip6` table `nodenet`. */
export const nftBackend: NetfilterBackend = { name: 'nftables', apply: applyNft, diff: diffNft };
