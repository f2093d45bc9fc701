// What the kernel would refuse, refused before committing: a libiptc commit fails with a bare
// EINVAL (the reason only in dmesg) and takes every other change of the table down with it.
import { isDeepFrozen } from './frozen.js';
import { protocolNumber } from './protocols.js';
import type { ExtensionSpec, RuleSpec, TableState } from './spec.js';

export class RuleValidationError extends RangeError {
  override readonly name = 'RuleValidationError';
}

const BUILTINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** The longest chain name a jump can carry (xt_entry_target's name field). */
export const MAX_CHAIN_NAME = 28;

const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]); // tcp, udp, dccp, sctp, udplite

function options<T>(ext: ExtensionSpec): T | null {
  return (ext.options ?? null) as T | null;
}

/**
 * What a caller remembers of one owned chain from an earlier call: the chain's first `prefix` and
 * last `suffix` rules are deeply frozen objects that were found valid in `context` (a value this
 * function returned for the chain). They are not looked at again while the context is the same.
 */
export interface KnownValid {
  prefix: number;
  suffix: number;
  context: string;
}

/**
 * Throws RuleValidationError naming the chain, rule and reason for the first problem found. Returns
 * each owned chain's validation context, for `known` (see KnownValid) in later calls.
 */
export function validateTableState(state: TableState, ownedPrefix: string, known?: (chain: string) => KnownValid | undefined): Map<string, string> {
  const builtins = BUILTINS[state.table];
  if (!builtins) throw new RuleValidationError(`table ${state.table}: nodenet writes only ${Object.keys(BUILTINS).join(', ')}`);
  const owned = new Map<string, RuleSpec[]>();
  for (const c of state.chains) {
    if (!c.name.startsWith(ownedPrefix)) throw new RuleValidationError(`chain ${c.name}: nodenet's chains are named ${ownedPrefix}*`);
    if (Buffer.byteLength(c.name) > MAX_CHAIN_NAME) throw new RuleValidationError(`chain ${c.name}: longer than ${MAX_CHAIN_NAME} bytes`);
    if (owned.has(c.name)) throw new RuleValidationError(`chain ${c.name}: listed twice`);
    owned.set(c.name, c.rules);
  }

  // Which builtin hooks reach each owned chain, through jumps and gotos; a loop is refused (ELOOP).
  const hooks = new Map<string, Set<string>>([...owned.keys()].map((n) => [n, new Set<string>()]));
  const visit = (chain: string, hook: string, path: string[]) => {
    if (path.includes(chain)) throw new RuleValidationError(`chains ${[...path, chain].join(' -> ')} form a loop`);
    const seen = hooks.get(chain)!;
    if (seen.has(hook)) return;
    seen.add(hook);
    for (const r of owned.get(chain) ?? []) {
      if (r.target.kind === 'jump' && owned.has(r.target.chain)) visit(r.target.chain, hook, [...path, chain]);
    }
  };
  for (const j of state.jumps) {
    if (!builtins.includes(j.chain)) throw new RuleValidationError(`jump from ${j.chain}: not a builtin chain of ${state.table}`);
    if (j.rule.target.kind !== 'jump' || !owned.has(j.rule.target.chain)) {
      throw new RuleValidationError(`jump from ${j.chain}: must target one of nodenet's chains in this state`);
    }
    visit(j.rule.target.chain, j.chain, []);
  }

  for (const j of state.jumps) validateRule(state, j.chain, -1, j.rule, new Set([j.chain]), owned);
  const contexts = new Map<string, string>();
  // A jump's validity also depends on which chains the state has: part of a chain's span context.
  const chainNames = [...owned.keys()].sort().join(',');
  for (const [name, rules] of owned) {
    const reach = hooks.get(name)!;
    // What a rule is checked against besides itself: its table and family, the hooks reaching it
    // and, for a jump, whether its target is one of the state's chains (checked every time).
    const context = `${state.family} ${state.table} ${[...reach].sort().join(',')}`;
    const spanContext = `${context} ${chainNames}`;
    contexts.set(name, spanContext);
    const k = known?.(name);
    const skip = k && k.context === spanContext && k.prefix + k.suffix <= rules.length ? k : null;
    const end = rules.length - (skip?.suffix ?? 0);
    for (let i = skip?.prefix ?? 0; i < end; i++) {
      const r = rules[i]!;
      if (r.target.kind !== 'jump' && VALID.get(r) === context) continue;
      validateRule(state, name, i, r, reach, owned);
      if (r.target.kind !== 'jump' && isDeepFrozen(r)) VALID.set(r, context);
    }
  }
  return contexts;
}

// Deeply frozen rules found valid, with the context they were found valid in (frozen.ts says why
// identity is enough).
const VALID = new WeakMap<RuleSpec, string>();

// Where a rule is, built only for a failure: a jump (index -1) or an owned chain's rule.
function failAt(state: TableState, chain: string, index: number, why: string): never {
  throw new RuleValidationError(`${state.table} ${chain} ${index < 0 ? '(jump)' : `rule ${index + 1}`}: ${why}`);
}

// Whether s may be longer than max bytes in UTF-8 (at most 3 per UTF-16 unit); Buffer.byteLength only then.
function longerThan(s: string, max: number): boolean {
  return s.length > max || (s.length * 3 > max && Buffer.byteLength(s) > max);
}

function validateRule(state: TableState, chain: string, index: number, r: RuleSpec, reach: Set<string>, owned: Map<string, RuleSpec[]>): void {
  const fail = (why: string): never => failAt(state, chain, index, why);
  const only = (allowed: string[], what: string) => {
    for (const hook of reach) {
      if (allowed.includes(hook)) continue;
      const bad = [...reach].filter((h) => !allowed.includes(h));
      fail(`${what} is valid only from ${allowed.join('/')}, but ${bad.join('/')} reach this rule`);
    }
  };
  let proto: number | null = null;
  try {
    proto = r.protocol ? (r.protocol.number ?? protocolNumber(r.protocol.name ?? 'all')) : null;
  } catch (e) {
    fail((e as Error).message);
  }
  const positiveProto = r.protocol && !r.protocol.invert ? proto : null;
  if (r.inInterface) only(['PREROUTING', 'INPUT', 'FORWARD'], '-i (in-interface)');
  if (r.outInterface) only(['FORWARD', 'OUTPUT', 'POSTROUTING'], '-o (out-interface)');
  if (r.fragment && state.family !== 'ipv4') fail('-f exists only for IPv4');

  for (const m of r.matches ?? []) {
    if (longerThan(m.name, 28)) fail(`match name ${m.name} is too long`);
    if (m.name === 'tcp' || m.name === 'udp') {
      if (positiveProto !== protocolNumber(m.name)) fail(`-m ${m.name} needs -p ${m.name}`);
    }
    if (m.name === 'comment') {
      const c = options<{ comment: string }>(m);
      if (c && longerThan(c.comment, 255)) fail('a comment holds at most 255 bytes');
    }
    if (m.name === 'addrtype') {
      const a = options<{ limitInInterface: boolean; limitOutInterface: boolean }>(m);
      if (a?.limitInInterface) only(['PREROUTING', 'INPUT', 'FORWARD'], 'addrtype --limit-iface-in');
      if (a?.limitOutInterface) only(['FORWARD', 'OUTPUT', 'POSTROUTING'], 'addrtype --limit-iface-out');
    }
  }

  const t = r.target;
  if (t.kind === 'jump' && !owned.has(t.chain)) fail(`jumps to ${t.chain}, which is not one of nodenet's chains in this state`);
  if (t.kind === 'extension') {
    if (t.name === 'DNAT') {
      if (state.table !== 'nat') fail('DNAT belongs in the nat table');
      only(['PREROUTING', 'OUTPUT'], 'DNAT');
      const n = options<{ ports: unknown }>(t);
      if (n?.ports && (positiveProto === null || !PORT_PROTOCOLS.has(positiveProto))) fail('DNAT to a port needs -p tcp, udp, sctp or dccp');
    }
    if (t.name === 'CT' && state.table !== 'raw') fail('CT belongs in the raw table');
  }
}
