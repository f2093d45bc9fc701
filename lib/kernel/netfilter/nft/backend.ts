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
import { native, type RawNftChain, type RawNftCommitRequest, type RawNftCommitResult, type RawNftDump, type RawNftDumpRequest, type RawNftGeneration, type RawNftOp, type RawNftRule } from '../../native.js';
import { OWNED_PREFIX, type ApplyOptions, type ApplyResult } from '../apply.js';
import type { NetfilterBackend } from '../backend.js';
import type { RuleSpec, TableState } from '../spec.js';
import { RuleValidationError, validateTableState } from '../validate.js';
import { shareKey } from './compare.js';
import { encodeNftRule, type NftRule } from './encode.js';
import { isDeepFrozen } from '../frozen.js';
import { baseChainName, baseChainSpec, NFT_LEGACY_TABLES, NFT_TABLE, nftFamily, nftFamilyName, ownedChainName } from './layout.js';
import { markSynced, planNft, rulesByChain, setRulesByChain, type NftPlan, type WantedChain } from './plan.js';
import { leavesEarly, ruleHash, segmented } from './segments.js';

/** The kernel calls the backend makes; tests substitute them. */
export interface NftKernel {
  dump(request: RawNftDumpRequest, netns?: string): Promise<RawNftDump>;
  commit(request: RawNftCommitRequest, netns?: string): Promise<RawNftCommitResult | void>;
  /** Without it every apply reads the table (no kept view). */
  readGeneration?(netns?: string): Promise<RawNftGeneration>;
}

export const nativeNftKernel: NftKernel = {
  dump: (request, netns) => kernelCall(native().nftDump(request, netns)),
  commit: (request, netns) => kernelCall(native().nftCommit(request, netns)),
  readGeneration: (netns) => kernelCall(native().nftGeneration(netns)),
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

// Deeply frozen rules (the agent's model makes them so) are found by identity first, skipping even
// the content key; the chain names a rule's jump encodes to depend on the table, hence one map per
// family and table.
const encodedFrozen = new Map<string, WeakMap<RuleSpec, NftRule>>();

function frozenEncodings(state: TableState): WeakMap<RuleSpec, NftRule> {
  const place = `${state.family} ${state.table}`;
  let m = encodedFrozen.get(place);
  if (!m) encodedFrozen.set(place, (m = new WeakMap()));
  return m;
}

// `where` names the rule in an error; built only then (a string per rule per apply adds up).
function encodeAt(rule: RuleSpec, state: TableState, frozen: WeakMap<RuleSpec, NftRule>, where: () => string): NftRule {
  const hit = frozen.get(rule);
  if (hit) return hit;
  const result = encodeByContent(rule, state, where);
  if (isDeepFrozen(rule)) frozen.set(rule, result);
  return result;
}

function encodeByContent(rule: RuleSpec, state: TableState, where: () => string): NftRule {
  const key = `${state.family} ${state.table} ${JSON.stringify(rule, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`;
  const known = encoded.get(key);
  if (known) return known;
  try {
    const result = encodeNftRule(rule, { family: state.family, chainName: (name) => ownedChainName(state.table, name) });
    if (encoded.size >= ENCODED_MAX) encoded.clear();
    encoded.set(key, result);
    return result;
  } catch (e) {
    if (e instanceof RangeError) throw new RuleValidationError(`${state.table} ${where()}: ${e.message}`);
    throw e;
  }
}

// What the last apply made of each owned chain, by family, table and chain name. The agent hands the
// same frozen rule objects to every apply and changes a few in the middle of a 20,000-rule chain:
// the rules both applies share at the chain's start and end (by identity) keep their validation,
// encoding, hash and segment, so an apply costs a pass of pointer compares plus the changed rules.
interface ChainMemo {
  /** The rules as given; null where one was not deeply frozen (it never matches again). */
  rules: Array<RuleSpec | null>;
  encoded: NftRule[];
  hashes: number[];
  /** How many rules return or go to (a chain with any stays flat). */
  leaving: number;
  /** The validation context every rule was found valid in. */
  context: string;
  out: WantedChain[];
}
const CHAIN_MEMOS_MAX = 256;
const chainMemos = new Map<string, ChainMemo>();

/** Forgets what earlier applies made of each chain (tests compare with a fresh computation). */
export function forgetWantedChains(): void {
  chainMemos.clear();
}

/** How many leading and trailing rules are the memo's very objects (deeply frozen, so unchanged). */
function sharedSpan(memo: ChainMemo | undefined, rules: readonly RuleSpec[]): { prefix: number; suffix: number } {
  if (!memo) return { prefix: 0, suffix: 0 };
  const held = memo.rules;
  const max = Math.min(held.length, rules.length);
  let prefix = 0;
  while (prefix < max && held[prefix] === rules[prefix]) prefix++;
  let suffix = 0;
  while (suffix < max - prefix && held[held.length - 1 - suffix] === rules[rules.length - 1 - suffix]) suffix++;
  return { prefix, suffix };
}

/** Everything the state asks for, as nft chains; throws RuleValidationError before any kernel call. */
export function wantedChains(state: TableState, ownedPrefix: string): WantedChain[] {
  const memoKey = (chain: string) => `${state.family} ${state.table} ${chain}`;
  const spans = new Map<string, { memo: ChainMemo | undefined; prefix: number; suffix: number }>();
  for (const c of state.chains) {
    const memo = chainMemos.get(memoKey(c.name));
    spans.set(c.name, { memo, ...sharedSpan(memo, c.rules) });
  }
  const contexts = validateTableState(state, ownedPrefix, (chain) => {
    const span = spans.get(chain);
    return span?.memo ? { prefix: span.prefix, suffix: span.suffix, context: span.memo.context } : undefined;
  });
  if (!NFT_LEGACY_TABLES.includes(state.table)) {
    throw new RuleValidationError(`table ${state.table}: the nftables backend lays out ${NFT_LEGACY_TABLES.join(', ')}`);
  }
  const frozen = frozenEncodings(state);
  const base = new Map<string, WantedChain>();
  for (const j of state.jumps) {
    let chain = base.get(j.chain);
    if (!chain) {
      const spec = baseChainSpec(state.table, j.chain);
      if (!spec) throw new RuleValidationError(`jump from ${j.chain}: not a builtin chain of ${state.table}`);
      chain = { name: baseChainName(state.table, j.chain), base: spec, rules: [] };
      base.set(j.chain, chain);
    }
    chain.rules.push(encodeAt(j.rule, state, frozen, () => `${j.chain} (jump)`));
  }
  const owned = state.chains.flatMap((c) => {
    const { memo, prefix, suffix } = spans.get(c.name)!;
    const context = contexts.get(c.name)!;
    if (memo && prefix === c.rules.length && memo.rules.length === prefix) {
      memo.context = context;
      return memo.out;
    }
    const n = c.rules.length;
    const had = memo?.rules.length ?? 0;
    // The shared ends are copied from the memo (native slices), and only the middle is encoded.
    const head = memo ? prefix : 0;
    const tail = memo ? suffix : 0;
    const middle: NftRule[] = [];
    const middleHashes: number[] = [];
    const middleHeld: Array<RuleSpec | null> = [];
    // The shared ends' count of leaving rules comes from the memo, less what its middle had.
    let leaving = 0;
    if (memo) {
      leaving = memo.leaving;
      for (let i = head; i < had - tail; i++) if (leavesEarly(memo.encoded[i]!)) leaving--;
    }
    for (let i = head; i < n - tail; i++) {
      const rule = c.rules[i]!;
      const e = encodeAt(rule, state, frozen, () => `${c.name} rule ${i + 1}`);
      middle.push(e);
      middleHashes.push(ruleHash(e));
      middleHeld.push(isDeepFrozen(rule) ? rule : null);
      if (leavesEarly(e)) leaving++;
    }
    const ends = <T>(from: readonly T[], mid: T[]): T[] => from.slice(0, head).concat(mid, from.slice(from.length - tail));
    const encoded = memo ? ends(memo.encoded, middle) : middle;
    const hashes = memo ? ends(memo.hashes, middleHashes) : middleHashes;
    const held = memo ? ends(memo.rules, middleHeld) : middleHeld;
    const chain: WantedChain = { name: ownedChainName(state.table, c.name), base: null, rules: encoded };
    const out = segmented(chain, { hashes, leaving: leaving > 0, ...(memo ? { previous: memo.out } : {}) });
    if (chainMemos.size >= CHAIN_MEMOS_MAX) chainMemos.clear();
    chainMemos.set(memoKey(c.name), { rules: held, encoded, hashes, leaving, context, out });
    return out;
  });
  // Base chains first: `nft list` then reads top-down, from where packets enter to where they jump,
  // as iptables-save lists builtin chains first.
  return [...base.values(), ...owned];
}

// What nodenet's table held after the last dump or commit, per network namespace (by cookie, which
// is never reused) and family, with the ruleset generation it is true at. Every commit is checked
// against the generation it was planned at and raises it by exactly one, so while the kernel's
// generation is the remembered one nobody else has changed anything and the view can stand in for
// a dump: a one-Service change then costs a generation read and a small batch, not a read of the
// whole table (seconds at 40,000 rules). Any other generation, or a failed commit, drops the view.
interface View {
  generation: number;
  dump: RawNftDump;
}
const VIEWS_MAX = 8;
const views = new Map<bigint, Map<number, View>>();

function viewsOf(cookie: bigint): Map<number, View> {
  let v = views.get(cookie);
  if (v) {
    // Most recently used last; the oldest namespace's views go first when there are too many.
    views.delete(cookie);
  } else {
    v = new Map();
    if (views.size >= VIEWS_MAX) views.delete(views.keys().next().value!);
  }
  views.set(cookie, v);
  return v;
}

/** Forgets every kept view (tests use it to force a read of the kernel). */
export function forgetNftViews(): void {
  views.clear();
}

async function readTable(kernel: NftKernel, state: TableState, netns: string | undefined): Promise<{ dump: RawNftDump; kept: Map<number, View> | null }> {
  const nf = nftFamily(state.family);
  let kept: Map<number, View> | null = null;
  if (kernel.readGeneration) {
    const now = await kernel.readGeneration(netns);
    kept = viewsOf(now.netnsCookie);
    const view = kept.get(nf);
    if (view && view.generation === now.generation) return { dump: view.dump, kept };
    // Views of this namespace at another generation are stale, whatever family they hold.
    for (const [family, v] of kept) if (v.generation !== now.generation) kept.delete(family);
  }
  const dump = await kernel.dump({ family: nf, table: NFT_TABLE, rules: true }, netns);
  if (kept && dump.netnsCookie !== undefined && kept !== views.get(dump.netnsCookie)) kept = viewsOf(dump.netnsCookie);
  return { dump, kept };
}

const nextGeneration = (g: number): number => ((g + 1) >>> 0) || 1;

// The table after `plan` committed on top of `dump`, built from the plan and the echoed handles.
// Chains the plan left alone keep their very lists, so the next plan can skip them (markSynced).
function viewAfter(state: TableState, dump: RawNftDump, plan: NftPlan, handles: bigint[]): RawNftDump {
  const nf = nftFamily(state.family);
  const generation = nextGeneration(dump.generation);
  if (plan.ops.some((o) => o.op === 'deleteTable')) return { generation, netnsCookie: dump.netnsCookie, tables: [], chains: [], rules: [] };
  const handleOf = new Map<number, bigint>();
  let n = 0;
  plan.ops.forEach((o, i) => {
    if (o.op === 'addRule') handleOf.set(i, handles[n++]!);
  });
  const deleted = new Set(plan.ops.flatMap((o) => (o.op === 'deleteChain' ? [o.chain] : [])));
  const tables = dump.tables.length ? dump.tables : [{ family: nf, name: NFT_TABLE, handle: 0n, flags: 0, userdata: null }];
  // A chain whose shape changed was deleted and is added again below, as every new one is.
  const chains: RawNftChain[] = dump.chains.filter((c) => !deleted.has(c.name));
  const present = new Set(chains.map((c) => c.name));
  for (const { chain: w } of plan.after) {
    if (present.has(w.name)) continue;
    present.add(w.name);
    chains.push({ family: nf, table: NFT_TABLE, name: w.name, handle: 0n, hook: w.base?.hook ?? null, priority: w.base?.priority ?? null, type: w.base?.type ?? null, policy: w.base?.policy ?? null, userdata: null });
  }
  const before = rulesByChain(dump, nf);
  const byChain = new Map(before);
  for (const name of deleted) byChain.delete(name);
  for (const { chain: w, rules: after } of plan.after) {
    if (!deleted.has(w.name) && after === before.get(w.name)) {
      markSynced(w, after as RawNftRule[]);
      continue;
    }
    const list = after.map((entry) => {
      if (!('op' in entry)) return entry;
      const op = plan.ops[entry.op] as Extract<RawNftOp, { op: 'addRule' }>;
      const rule: RawNftRule = { family: nf, table: NFT_TABLE, chain: w.name, handle: handleOf.get(entry.op)!, userdata: op.userdata ?? null, exprs: op.exprs };
      shareKey(rule, entry.rule);
      return rule;
    });
    byChain.set(w.name, list);
    markSynced(w, list);
  }
  // The flat list is for readers of the dump as such; the planner reads the grouping set below, so
  // 40,000 rules are not copied into a new array at every commit.
  let rules: RawNftRule[] | null = null;
  const after = { generation, netnsCookie: dump.netnsCookie, tables, chains } as RawNftDump;
  Object.defineProperty(after, 'rules', { enumerable: true, get: () => (rules ??= [...byChain.values()].flat()) });
  setRulesByChain(after, nf, byChain);
  return after;
}

async function run(state: TableState, options: NftApplyOptions, dryRun: boolean): Promise<ApplyResult> {
  const ownedPrefix = options.ownedPrefix ?? OWNED_PREFIX;
  const wanted = wantedChains(state, ownedPrefix);
  const kernel = options.kernel ?? nativeNftKernel;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const nf = nftFamily(state.family);
  const plan = (dump: RawNftDump): NftPlan => planNft({ family: state.family, table: state.table, ownedPrefix, wanted, dump });
  let attempts = 0;
  let inCommit = 0;
  for (;;) {
    const { dump, kept } = await readTable(kernel, state, options.netns);
    kept?.set(nf, { generation: dump.generation, dump });
    const p = plan(dump);
    if (p.ops.length === 0 || dryRun) return { changes: p.changes, committed: false, attempts, lockWaitMs: 0, lockHoldMs: inCommit };
    attempts++;
    await options.beforeCommit?.(attempts);
    const started = performance.now();
    try {
      const result = await kernel.commit({ generation: dump.generation, ops: p.ops, echo: kept !== null }, options.netns);
      inCommit += performance.now() - started;
      if (kept) {
        const addRules = p.ops.filter((o) => o.op === 'addRule').length;
        if (result && result.handles.length === addRules) {
          const after = viewAfter(state, dump, p, result.handles);
          // Other families' views stay true: this commit was the only change since their generation.
          for (const [family, v] of kept) if (v.generation === dump.generation) kept.set(family, { generation: after.generation, dump: family === nf ? after : v.dump });
        } else {
          kept.clear();
        }
      }
      return { changes: p.changes, committed: true, attempts, lockWaitMs: 0, lockHoldMs: inCommit };
    } catch (error) {
      inCommit += performance.now() - started;
      kept?.clear();
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
