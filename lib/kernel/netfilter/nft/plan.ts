// From what the kernel holds (one dump of nodenet's table) and what nodenet wants for one legacy
// table's part of it, to the one batch of operations that makes them equal, and the change lines
// saying what differed. Pure: no kernel here, so every case is unit-tested.
//
// Rules are edited, not rewritten: the rules a chain keeps at its start and at its end (and their
// counters, which operators read) stay, and only what lies between is deleted by handle and
// inserted after the last kept rule, the way the legacy backend keeps shared rules. The batch has
// no "insert before" for a chain whose first rule changes while later ones stay, so that case
// rewrites the chain (flush, then append): always correct, at the cost of those counters.
import type { RawNftChain, RawNftDump, RawNftOp, RawNftRule } from '../../native.js';
import type { IpFamily } from '../types.js';
import { ruleKey } from './compare.js';
import { describeNftRule } from './describe.js';
import type { NftRule } from './encode.js';
import { describeBaseChain, isChainOf, NFT_TABLE, nftFamily, nftFamilyName, type BaseChainSpec } from './layout.js';

export interface WantedChain {
  /** The nft chain name. */
  name: string;
  /** Null for a regular chain. */
  base: BaseChainSpec | null;
  rules: NftRule[];
}

export interface NftPlanInput {
  family: IpFamily;
  /** The legacy table whose part of nodenet's nft table this plan covers. */
  table: string;
  ownedPrefix: string;
  wanted: WantedChain[];
  dump: RawNftDump;
}

/** A rule the batch adds: its addRule's index in the ops, and the wanted rule it writes. */
export interface Added {
  op: number;
  rule: NftRule;
}

export interface NftPlan {
  ops: RawNftOp[];
  /** One line per difference; empty exactly when ops is. */
  changes: string[];
  /**
   * Each wanted chain's rules after the batch, in order: a rule kept from the dump (its object),
   * or the index in `ops` of the addRule that makes it, with the wanted rule. With the handles the
   * commit echoes, what the kernel holds afterwards is known without reading it again.
   */
  after: Array<{ chain: WantedChain; rules: Array<RawNftRule | Added> }>;
}

function sameShape(have: RawNftChain, want: BaseChainSpec | null): boolean {
  if (want === null) return have.hook === null;
  return have.hook === want.hook && have.priority === want.priority && have.type === want.type && (have.policy ?? want.policy) === want.policy;
}

// A dump's rules of nodenet's table by chain, in kernel order; built once per dump (a kept view is
// planned against many times, and grouping 40,000 rules each time would cost more than the plan).
const grouped = new WeakMap<RawNftDump, Map<number, Map<string, RawNftRule[]>>>();

/** `dump`'s rules in nodenet's table of nft family `family`, by chain (remembered per dump object). */
export function rulesByChain(dump: RawNftDump, family: number): Map<string, RawNftRule[]> {
  let families = grouped.get(dump);
  if (!families) grouped.set(dump, (families = new Map()));
  let byChain = families.get(family);
  if (byChain) return byChain;
  byChain = new Map();
  for (const r of dump.rules) {
    if (r.table !== NFT_TABLE || r.family !== family) continue;
    let list = byChain.get(r.chain);
    if (!list) byChain.set(r.chain, (list = []));
    list.push(r);
  }
  families.set(family, byChain);
  return byChain;
}

/** Tells rulesByChain how `dump`'s rules of `family` group, when the caller built them that way. */
export function setRulesByChain(dump: RawNftDump, family: number, byChain: Map<string, RawNftRule[]>): void {
  let families = grouped.get(dump);
  if (!families) grouped.set(dump, (families = new Map()));
  families.set(family, byChain);
}

/** The plan for one legacy table: create, edit and delete only that table's chains. */
export function planNft(input: NftPlanInput): NftPlan {
  const { family, table, ownedPrefix, wanted, dump } = input;
  const nf = nftFamily(family);
  const fam = nftFamilyName(family);
  const ours = (x: { family: number; table: string }) => x.family === nf && x.table === NFT_TABLE;
  const tableExists = dump.tables.some((t) => t.family === nf && t.name === NFT_TABLE);
  const chains = dump.chains.filter(ours);
  const mine = chains.filter((c) => isChainOf(table, c.name, ownedPrefix));
  const byChain = rulesByChain(dump, nf);
  const rulesOf = (chain: string): RawNftRule[] => byChain.get(chain) ?? [];
  const describe = (r: { exprs: RawNftRule['exprs']; userdata?: Buffer | null }) => describeNftRule(r, family);

  const ops: RawNftOp[] = [];
  const changes: string[] = [];
  const chainOp = { family: nf, table: NFT_TABLE };

  if (wanted.length && !tableExists) {
    ops.push({ op: 'addTable', ...chainOp });
    changes.push(`+ table ${fam} ${NFT_TABLE}`);
  }

  // Chains first, so rules can jump to chains created in the same batch. A base chain whose hook,
  // priority or type differ cannot be changed in place: it is replaced (nothing jumps to a base chain).
  const fresh = new Set<string>();
  const mineByName = new Map(mine.map((c) => [c.name, c]));
  for (const w of wanted) {
    const have = mineByName.get(w.name);
    if (have && sameShape(have, w.base)) continue;
    if (have) {
      ops.push({ op: 'flushChain', ...chainOp, chain: w.name }, { op: 'deleteChain', ...chainOp, chain: w.name });
      changes.push(`- chain ${fam} ${NFT_TABLE} ${w.name}${describeBaseChain(have)}`);
    }
    ops.push(w.base ? { op: 'addChain', ...chainOp, chain: w.name, hook: w.base.hook, priority: w.base.priority, type: w.base.type, policy: w.base.policy } : { op: 'addChain', ...chainOp, chain: w.name });
    changes.push(`+ chain ${fam} ${NFT_TABLE} ${w.name}${w.base ? describeBaseChain(w.base) : ''}`);
    fresh.add(w.name);
  }

  const after = wanted.map((w) => ({ chain: w, rules: syncRules(w, fresh.has(w.name) ? [] : rulesOf(w.name), ops, changes, chainOp, describe) }));

  const wantedNames = new Set(wanted.map((w) => w.name));
  const chainNames = new Set(chains.map((c) => c.name));
  const stale = mine.filter((c) => !wantedNames.has(c.name));
  const left = chains.length - stale.length + wanted.filter((w) => !chainNames.has(w.name)).length;
  if (tableExists && left === 0) {
    // Nothing of any legacy table is left: the table goes, and with it what it held, in one op.
    for (const c of stale) changes.push(`- chain ${fam} ${NFT_TABLE} ${c.name}${describeBaseChain(c)}`);
    changes.push(`- table ${fam} ${NFT_TABLE}`);
    return { ops: [{ op: 'deleteTable', ...chainOp }], changes, after: [] };
  }
  // Emptied before any is deleted, so no stale chain still jumps to another when it goes; rules
  // in wanted chains that jumped to them are gone by now, earlier in the batch.
  for (const c of stale) if (rulesOf(c.name).length) ops.push({ op: 'flushChain', ...chainOp, chain: c.name });
  for (const c of stale) {
    ops.push({ op: 'deleteChain', ...chainOp, chain: c.name });
    changes.push(`- chain ${fam} ${NFT_TABLE} ${c.name}${describeBaseChain(c)}`);
  }
  return { ops, changes, after };
}

// A wanted chain known to equal a list of the kernel's rules (the planner found them equal, or a
// commit made them so). The backend hands the same WantedChain for an unchanged chain or segment
// and a kept view the same list for an unchanged chain: then no rule needs comparing.
const synced = new WeakMap<WantedChain, readonly RawNftRule[]>();

/** Records that the kernel's `rules` are exactly what `w` wants (a kept view's chain after a commit). */
export function markSynced(w: WantedChain, rules: readonly RawNftRule[]): void {
  synced.set(w, rules);
}

function syncRules(
  w: WantedChain,
  have: RawNftRule[],
  ops: RawNftOp[],
  changes: string[],
  chainOp: { family: number; table: string },
  describe: (r: { exprs: RawNftRule['exprs']; userdata?: Buffer | null }) => string,
): Array<RawNftRule | Added> {
  if (synced.get(w) === have) return have;
  const want = w.rules;
  const haveKeys = have.map(ruleKey);
  const wantKeys = want.map(ruleKey);
  let prefix = 0;
  while (prefix < have.length && prefix < want.length && haveKeys[prefix] === wantKeys[prefix]) prefix++;
  let suffix = 0;
  while (suffix < have.length - prefix && suffix < want.length - prefix && haveKeys[have.length - 1 - suffix] === wantKeys[want.length - 1 - suffix]) suffix++;
  const removed = have.slice(prefix, have.length - suffix);
  const added = want.slice(prefix, want.length - suffix);
  if (!removed.length && !added.length) {
    synced.set(w, have);
    return have;
  }
  // Where each added rule's addRule op lands in ops, by its index in `added`.
  const addedAt: Added[] = new Array<Added>(added.length);
  const kept = (middle: Added[]): Array<RawNftRule | Added> => [...have.slice(0, prefix), ...middle, ...have.slice(have.length - suffix)];

  for (const r of removed) changes.push(`- ${w.name}: ${describe(r)}`);
  for (const r of added) changes.push(`+ ${w.name}: ${describe(r)}`);

  const add = (r: NftRule, position?: bigint): RawNftOp => {
    const op: Extract<RawNftOp, { op: 'addRule' }> = { op: 'addRule', ...chainOp, chain: w.name, exprs: r.exprs };
    if (r.userdata) op.userdata = r.userdata;
    if (position !== undefined) op.position = position;
    return op;
  };
  const flush = (): RawNftOp => ({ op: 'flushChain', ...chainOp, chain: w.name });
  if (prefix > 0) {
    for (const r of removed) ops.push({ op: 'deleteRule', ...chainOp, chain: w.name, handle: r.handle });
    // Each inserted right after the last kept rule, last first, so they end up in order.
    const anchor = have[prefix - 1]!.handle;
    for (let i = added.length - 1; i >= 0; i--) addedAt[i] = { op: ops.push(add(added[i]!, anchor)) - 1, rule: added[i]! };
    return kept(addedAt);
  }
  if (suffix > 0 && added.length > 0) {
    // New rules before kept ones: no batch op inserts at the top, so the chain is rewritten.
    ops.push(flush());
    return want.map((r) => ({ op: ops.push(add(r)) - 1, rule: r }));
  }
  if (suffix > 0) {
    for (const r of removed) ops.push({ op: 'deleteRule', ...chainOp, chain: w.name, handle: r.handle });
    return kept([]);
  }
  // Nothing kept: whatever was there goes in one op, and the new rules are appended.
  if (have.length) ops.push(flush());
  return added.map((r) => ({ op: ops.push(add(r)) - 1, rule: r }));
}
