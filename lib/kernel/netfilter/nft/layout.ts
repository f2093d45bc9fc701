// Where nodenet's rules live in nf_tables, and why there. This header is the design record of the
// nftables backend's layout.
//
// One table per family, nodenet's own: `ip nodenet` (IPv4) and `ip6 nodenet` (IPv6). Nothing outside
// it is ever touched, and removing nodenet is deleting those two tables.
//
// A TableState describes nodenet's part of one legacy table T (filter, nat, raw, mangle, security):
// owned chains NODENET-* and jumps into them from T's builtin chains. In nftables each piece
// becomes a chain of the one nodenet table, named after T so that the same owned chain name in two
// legacy tables (nothing forbids it) never collides:
//   - owned chain N of T          -> regular chain `${T}-${N}`       (filter-NODENET-DROP-INVALID)
//   - jumps from builtin chain C  -> base chain    `${T}-${c}`       (nat-prerouting), holding
//     exactly those jump rules, in order, policy accept, hooked where C is, type filter (nat for
//     T = nat, route for mangle OUTPUT, as iptables-nft types them).
// Each T is applied on its own: an apply for T reads and changes only T's chains, so the four
// per-table commits the agent makes stay independent, as with legacy iptables.
//
// Priorities. A legacy jump is inserted first in its builtin chain, so nodenet's rules run before
// anything else in that table; in nftables every base chain at a hook runs in priority order, so
// each of nodenet's base chains sits just before the iptables table it replaces (and before the
// nft chains that mimic those tables at the standard priorities):
//   raw     -310  before iptables raw (-300) and, what matters, before conntrack (-200): NOTRACK
//                 must mark the packet before conntrack sees it.
//   mangle  -160  before iptables mangle (-150), after conntrack as mangle is.
//   nat     -110  PREROUTING and OUTPUT (dstnat is -100): nodenet's DNAT binds before kube-proxy's
//                 KUBE-SERVICES can; the first nat chain that binds a connection wins, which is what
//                 the legacy jump inserted first in PREROUTING achieves.
//            90  INPUT and POSTROUTING (srcnat is 100), likewise first.
//   filter  -10  before iptables filter (0).
//   security 40  before iptables security (50).
//
// Where nftables semantics differ from legacy iptables, and what that means for nodenet's rules:
//   - ACCEPT ends only the traversal of nodenet's base chain. The packet then meets every later
//     base chain at the hook: iptables' own table, other nft tables. In legacy iptables an ACCEPT in
//     a chain jumped from INPUT accepted the packet for the whole filter INPUT chain. So
//     NODENET-DNS-ACCEPT now only keeps nodenet's own chains from dropping untracked DNS; a node
//     firewall that drops what it has not accepted must accept untracked DNS (ct state untracked,
//     udp port 53) itself.
//   - DROP is final everywhere, as in legacy: no later chain sees the packet.
//   - NAT: the first nat chain that binds a connection wins and later nat chains at that hook do not
//     run for it; nodenet's -110 puts its DNAT first, as above. A mark set there is on the packet for
//     every later chain (kube-proxy's masquerade in POSTROUTING sees it).
//   - RETURN from a chain jumped to from a base chain continues in the base chain; at its end the
//     policy (accept) applies and the next base chain runs: the same as returning to a builtin
//     chain after nodenet's jump.
import { NFT_TABLE } from '../detect.js';
import type { IpFamily } from '../types.js';
import { HOOK, NF_ACCEPT, NFPROTO } from './constants.js';

/** nodenet's own table, in each family (the name backend detection ignores as evidence). */
export { NFT_TABLE };

export interface BaseChainSpec {
  hook: number;
  priority: number;
  type: 'filter' | 'nat' | 'route';
  policy: number;
}

const HOOKS: Readonly<Record<string, number>> = {
  PREROUTING: HOOK.PREROUTING,
  INPUT: HOOK.INPUT,
  FORWARD: HOOK.FORWARD,
  OUTPUT: HOOK.OUTPUT,
  POSTROUTING: HOOK.POSTROUTING,
};

/** The legacy tables the backend lays out, their builtin chains and base chain priorities. */
const TABLES: Readonly<Record<string, { builtins: readonly string[]; priority(builtin: string): number }>> = {
  raw: { builtins: ['PREROUTING', 'OUTPUT'], priority: () => -310 },
  mangle: { builtins: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'], priority: () => -160 },
  nat: { builtins: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'], priority: (c) => (c === 'PREROUTING' || c === 'OUTPUT' ? -110 : 90) },
  filter: { builtins: ['INPUT', 'FORWARD', 'OUTPUT'], priority: () => -10 },
  security: { builtins: ['INPUT', 'FORWARD', 'OUTPUT'], priority: () => 40 },
};

export const NFT_LEGACY_TABLES: readonly string[] = Object.keys(TABLES);

export function nftFamily(family: IpFamily): number {
  return family === 'ipv4' ? NFPROTO.IPV4 : NFPROTO.IPV6;
}

/** `ip` or `ip6`, as nft names the family. */
export function nftFamilyName(family: IpFamily): 'ip' | 'ip6' {
  return family === 'ipv4' ? 'ip' : 'ip6';
}

/** The regular chain an owned chain of legacy table `table` becomes. */
export function ownedChainName(table: string, chain: string): string {
  return `${table}-${chain}`;
}

/**
 * Long owned chains are cut into segments (see segments.ts): regular chains named after their
 * parent and a hash, `nat-NODENET-EXTERNAL-PODS.0a1b2c3d` (`-2`, `-3`... when two would share one),
 * which the parent jumps to in order. The parent of a segment's name, or null for any other name.
 */
export function segmentParent(chain: string): string | null {
  const m = /^(.+)\.[0-9a-f]{8}(?:-\d+)?$/.exec(chain);
  return m ? m[1]! : null;
}

/** The base chain the jumps from builtin chain `builtin` of legacy table `table` go into. */
export function baseChainName(table: string, builtin: string): string {
  return `${table}-${builtin.toLowerCase()}`;
}

/** Hook, priority, type and policy of that base chain; null when `builtin` is not one of the table's. */
export function baseChainSpec(table: string, builtin: string): BaseChainSpec | null {
  const t = TABLES[table];
  const hook = HOOKS[builtin];
  if (!t || hook === undefined || !t.builtins.includes(builtin)) return null;
  const type = table === 'nat' ? 'nat' : table === 'mangle' && builtin === 'OUTPUT' ? 'route' : 'filter';
  return { hook, priority: t.priority(builtin), type, policy: NF_ACCEPT };
}

/** Whether an nft chain of nodenet's table belongs to legacy table `table` (as base or owned chain). */
export function isChainOf(table: string, chain: string, ownedPrefix: string): boolean {
  const t = TABLES[table];
  if (!t || !chain.startsWith(`${table}-`)) return false;
  const rest = chain.slice(table.length + 1);
  return rest.startsWith(ownedPrefix) || t.builtins.some((b) => b.toLowerCase() === rest);
}

const HOOK_NAMES = ['prerouting', 'input', 'forward', 'output', 'postrouting'];

/** The chain's declaration as nft prints it: `{ type nat hook prerouting priority -110; policy accept; }`. */
export function describeBaseChain(spec: { hook: number | null; priority: number | null; type: string | null; policy: number | null }): string {
  if (spec.hook === null) return '';
  const policy = spec.policy === null ? '' : ` policy ${spec.policy === NF_ACCEPT ? 'accept' : spec.policy === 0 ? 'drop' : spec.policy};`;
  return ` { type ${spec.type ?? '?'} hook ${HOOK_NAMES[spec.hook] ?? spec.hook} priority ${spec.priority ?? '?'};${policy} }`;
}
