// From a RuleSpec (iptables' vocabulary) to nf_tables expressions, the way nft itself writes the
// same rule, so that `nft list` prints it as a person would have typed it and a dump of it reads
// back attribute for attribute as written. Anything without a faithful nftables form is refused
// with a RangeError naming it, never approximated: a rule that matched more or less than the
// legacy one would be a different firewall.
import { endianness } from 'node:os';

import { parseAddress, parseCidr, prefixLength } from '../addresses.js';
import type { AddrtypeOptions, ConntrackOptions, MarkMatchOptions, PortRange, SctpOptions, TcpOptions, UdpOptions } from '../matches.js';
import { protocolNumber } from '../protocols.js';
import type { ExtensionSpec, RuleSpec } from '../spec.js';
import type { CtOptions, MarkTargetOptions, NatOptions } from '../targets.js';
import type { IpFamily, Negatable } from '../types.js';
import type { RawNftExpr } from '../../native.js';
import { BITWISE, CMP, CT_KEY, CT_STATE, FIB_FLAG, FIB_RESULT, IFNAMSIZ, META, NAT_FLAG, NAT_TYPE, NF_ACCEPT, NF_DROP, NFPROTO, PAYLOAD_BASE, RANGE, REG, RTN_TYPES, VERDICT } from './constants.js';
import { encodeComment } from './userdata.js';

export interface NftRule {
  exprs: RawNftExpr[];
  /** NFTA_RULE_USERDATA: the comment, or null. */
  userdata: Buffer | null;
}

export interface NftEncodeOptions {
  family: IpFamily;
  /** The nft chain a jump or goto to this (RuleSpec) chain name lands in. */
  chainName(name: string): string;
}

const HOST_LE = endianness() === 'LE';

/** A u32 in host order, as meta mark, ct state and fib type are held in a register. */
export function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  if (HOST_LE) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
}

function be16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}

// ---- expression builders (every load goes to NFT_REG_1, as nft's does for one-value matches) ----

const payload = (base: number, offset: number, len: number): RawNftExpr => ({ name: 'payload', dreg: REG.R1, base, offset, len });
const metaLoad = (key: number): RawNftExpr => ({ name: 'meta', key, dreg: REG.R1 });
const cmp = (op: number, data: Buffer): RawNftExpr => ({ name: 'cmp', sreg: REG.R1, op, data });
const bitwise = (mask: Buffer, xor: Buffer): RawNftExpr => ({ name: 'bitwise', sreg: REG.R1, dreg: REG.R1, len: mask.length, op: BITWISE.BOOL, mask, xor });
const eqOrNeq = (invert: boolean) => (invert ? CMP.NEQ : CMP.EQ);

function fail(what: string): never {
  throw new RangeError(what);
}

// ---- the rule header ---------------------------------------------------------------------------

const ADDRESS_FIELD = {
  ipv4: { saddr: 12, daddr: 16, size: 4 },
  ipv6: { saddr: 8, daddr: 24, size: 16 },
} as const;

/**
 * `ip saddr 10.0.0.0/8`, as nft 1.0 writes it: a prefix on a byte boundary loads only its bytes and
 * compares them; any other prefix (and a mask with holes, which iptables allows and nft prints as
 * `ip saddr & 255.0.255.0 == 10.0.0.0`) loads the whole address, masks it and compares.
 */
function addressMatch(family: IpFamily, field: 'saddr' | 'daddr', value: Negatable<string>): RawNftExpr[] {
  const { address, mask } = parseCidr(value.value, family);
  const f = ADDRESS_FIELD[family];
  const bits = prefixLength(mask);
  if (mask.every((b) => b === 0)) {
    if (value.invert) fail(`! ${value.value} matches no packet`);
    return [];
  }
  const op = eqOrNeq(value.invert);
  if (bits > 0 && bits % 8 === 0) return [payload(PAYLOAD_BASE.NETWORK, f[field], bits / 8), cmp(op, Buffer.from(address.subarray(0, bits / 8)))];
  return [payload(PAYLOAD_BASE.NETWORK, f[field], f.size), bitwise(Buffer.from(mask), Buffer.alloc(f.size)), cmp(op, Buffer.from(address))];
}

function interfaceMatch(key: number, option: string, value: Negatable<string>): RawNftExpr[] {
  const name = value.value;
  const bytes = Buffer.from(name, 'latin1');
  if (bytes.length + 1 > IFNAMSIZ) fail(`${option} ${JSON.stringify(name)}: an interface name is shorter than ${IFNAMSIZ} bytes`);
  if (!/^[^\s/:]+$/.test(name) || Buffer.byteLength(name) !== bytes.length) fail(`${option} ${JSON.stringify(name)} has characters no interface has`);
  if (name.endsWith('+')) {
    // `veth+` is nft's `"veth*"`: a compare of only the prefix bytes of the loaded name.
    const prefix = bytes.subarray(0, bytes.length - 1);
    if (prefix.length === 0) {
      if (value.invert) fail(`! ${option} + matches no packet`);
      return [];
    }
    return [metaLoad(key), cmp(eqOrNeq(value.invert), Buffer.from(prefix))];
  }
  const data = Buffer.alloc(IFNAMSIZ);
  bytes.copy(data);
  return [metaLoad(key), cmp(eqOrNeq(value.invert), data)];
}

/** The protocol number the rule requires (null when it may be any, or is inverted). */
function requiredProtocol(rule: RuleSpec): number | null {
  if (!rule.protocol || rule.protocol.invert) return null;
  return rule.protocol.number ?? protocolNumber(rule.protocol.name ?? 'all');
}

function protocolMatch(rule: RuleSpec): RawNftExpr[] {
  const p = rule.protocol;
  if (!p) return [];
  const number = p.number ?? protocolNumber(p.name ?? 'all');
  if (!Number.isInteger(number) || number < 0 || number > 255) fail(`protocol ${number} is not 0-255`);
  if (number === 0) {
    if (p.invert) fail('! -p all matches no packet');
    return [];
  }
  return [metaLoad(META.L4PROTO), cmp(eqOrNeq(p.invert === true), Buffer.from([number]))];
}

// ---- matches -----------------------------------------------------------------------------------

const PORT_PROTOCOLS: Readonly<Record<string, number>> = { tcp: 6, udp: 17, sctp: 132 };

/** `tcp dport 80`, `tcp dport 1024-65535` (two compares, as nft writes a range), `!= 1-2` (range). */
function portMatch(offset: number, ports: Negatable<PortRange> | null, what: string): RawNftExpr[] {
  if (!ports) return [];
  const { from, to } = ports.value;
  for (const p of [from, to]) if (!Number.isInteger(p) || p < 0 || p > 0xffff) fail(`${what} ${p} is not 0-65535`);
  if (from > to) fail(`${what} range ${from}:${to} is reversed`);
  if (from === 0 && to === 0xffff) {
    if (ports.invert) fail(`! ${what} 0:65535 matches no packet`);
    return [];
  }
  const load = payload(PAYLOAD_BASE.TRANSPORT, offset, 2);
  if (from === to) return [load, cmp(eqOrNeq(ports.invert), be16(from))];
  if (!ports.invert) return [load, cmp(CMP.GTE, be16(from)), cmp(CMP.LTE, be16(to))];
  return [load, { name: 'range', sreg: REG.R1, op: RANGE.NEQ, from_data: be16(from), to_data: be16(to) }];
}

function options<T>(m: ExtensionSpec): T {
  if (m.options === undefined || m.options === null) {
    fail(`-m ${m.name} given as raw bytes: nodenet translates only decoded options to nftables`);
  }
  return m.options as T;
}

function portsMatch(rule: RuleSpec, m: ExtensionSpec): RawNftExpr[] {
  const o = options<TcpOptions | UdpOptions | SctpOptions>(m);
  if (requiredProtocol(rule) !== PORT_PROTOCOLS[m.name]) fail(`-m ${m.name} needs -p ${m.name}`);
  if (m.name === 'tcp') {
    const t = o as TcpOptions;
    if (t.option) fail('-m tcp --tcp-option is not translated to nftables');
    if (t.flags) fail('-m tcp --tcp-flags is not translated to nftables');
  }
  return [...portMatch(0, o.sourcePorts ?? null, `${m.name} sport`), ...portMatch(2, o.destinationPorts ?? null, `${m.name} dport`)];
}

const CT_STATE_BITS: Readonly<Record<string, number>> = {
  INVALID: CT_STATE.INVALID,
  ESTABLISHED: CT_STATE.ESTABLISHED,
  RELATED: CT_STATE.RELATED,
  NEW: CT_STATE.NEW,
  UNTRACKED: CT_STATE.UNTRACKED,
};

/**
 * `ct state invalid`: a packet has exactly one state bit, so "any of these" is a masked compare
 * against zero, as nft writes it. `! --ctstate X` for one state is nft's `ct state != x`; for several
 * it is the mask compared equal to zero.
 */
function conntrackMatch(m: ExtensionSpec): RawNftExpr[] {
  const o = options<ConntrackOptions>(m);
  const others = Object.entries(o).filter(([k, v]) => k !== 'state' && k !== 'stateAlias' && v !== null && v !== undefined);
  if (others.length) fail(`-m conntrack ${others.map(([k]) => k).join(', ')}: only --ctstate is translated to nftables`);
  if (!o.state) fail('-m conntrack without --ctstate');
  let bits = 0;
  for (const s of o.state.value) {
    const bit = CT_STATE_BITS[s];
    if (bit === undefined) fail(`--ctstate ${s} is not translated to nftables (ct state has ${Object.keys(CT_STATE_BITS).join(', ')})`);
    bits |= bit;
  }
  if (bits === 0) fail('--ctstate without a state');
  const load: RawNftExpr = { name: 'ct', key: CT_KEY.STATE, dreg: REG.R1 };
  const single = (bits & (bits - 1)) === 0;
  if (o.state.invert && single) return [load, cmp(CMP.NEQ, u32(bits))];
  return [load, bitwise(u32(bits), u32(0)), cmp(o.state.invert ? CMP.EQ : CMP.NEQ, u32(0))];
}

function addressType(types: string[], option: string): number {
  if (types.length !== 1) fail(`addrtype ${option} ${types.join(',')}: nftables compares one type without a set; give one type per rule`);
  const i = RTN_TYPES.indexOf(types[0]!.toLowerCase() as (typeof RTN_TYPES)[number]);
  if (i < 0) fail(`unknown address type ${JSON.stringify(types[0])}`);
  return i;
}

/** `fib saddr type local`, `fib daddr . iif type local`: what xt_addrtype asks the FIB. */
function addrtypeMatch(m: ExtensionSpec): RawNftExpr[] {
  const o = options<AddrtypeOptions>(m);
  if (o.limitInInterface && o.limitOutInterface) fail('addrtype --limit-iface-in and --limit-iface-out exclude each other');
  const limit = o.limitInInterface ? FIB_FLAG.IIF : o.limitOutInterface ? FIB_FLAG.OIF : 0;
  if (!o.sourceTypes && !o.destinationTypes) fail('-m addrtype without --src-type or --dst-type');
  const out: RawNftExpr[] = [];
  for (const [side, types, option] of [
    [FIB_FLAG.SADDR, o.sourceTypes, '--src-type'],
    [FIB_FLAG.DADDR, o.destinationTypes, '--dst-type'],
  ] as const) {
    if (!types) continue;
    out.push({ name: 'fib', dreg: REG.R1, result: FIB_RESULT.ADDRTYPE, flags: side | limit }, cmp(eqOrNeq(types.invert), u32(addressType(types.value, option))));
  }
  return out;
}

function markMatch(m: ExtensionSpec): RawNftExpr[] {
  const o = options<MarkMatchOptions>(m);
  const masked = o.mask >>> 0 === 0xffffffff ? [] : [bitwise(u32(o.mask), u32(0))];
  return [metaLoad(META.MARK), ...masked, cmp(eqOrNeq(o.invert), u32(o.mark))];
}

function matchExprs(rule: RuleSpec, m: ExtensionSpec): RawNftExpr[] {
  switch (m.name) {
    case 'tcp':
    case 'udp':
    case 'sctp':
      return portsMatch(rule, m);
    case 'conntrack':
      return conntrackMatch(m);
    case 'addrtype':
      return addrtypeMatch(m);
    case 'mark':
      return markMatch(m);
    default:
      return fail(`-m ${m.name} is not translated to nftables`);
  }
}

// ---- targets -----------------------------------------------------------------------------------

const verdict = (code: number, chain?: string): RawNftExpr => (chain === undefined ? { name: 'immediate', dreg: REG.VERDICT, verdict: code } : { name: 'immediate', dreg: REG.VERDICT, verdict: code, chain });

/**
 * `dnat to 10.96.0.10:80`: the address and port go into registers first. The kernel ORs
 * NF_NAT_RANGE_MAP_IPS and NF_NAT_RANGE_PROTO_SPECIFIED into the flags itself and dumps min and max
 * registers both, so they are written that way here, and a dump compares equal.
 */
function dnatExprs(o: NatOptions, family: IpFamily): RawNftExpr[] {
  if (!o.addresses) fail('DNAT without an address (--to-destination :port) is not translated to nftables');
  if (o.ports?.base !== null && o.ports?.base !== undefined) fail('DNAT with a port offset (/base) is not translated to nftables');
  const from = parseAddress(o.addresses.from, family);
  const to = parseAddress(o.addresses.to, family);
  if (!from || !to) fail(`DNAT to ${o.addresses.from}${o.addresses.to !== o.addresses.from ? '-' + o.addresses.to : ''} is not an ${family} address`);
  const out: RawNftExpr[] = [];
  let reg: number = REG.R1;
  const load = (data: Buffer): number => {
    out.push({ name: 'immediate', dreg: reg, data });
    return reg++;
  };
  const addrMin = load(Buffer.from(from));
  const addrMax = Buffer.compare(Buffer.from(from), Buffer.from(to)) === 0 ? addrMin : load(Buffer.from(to));
  let flags: number = NAT_FLAG.MAP_IPS;
  const nat: RawNftExpr = { name: 'nat', type: NAT_TYPE.DNAT, family: family === 'ipv4' ? NFPROTO.IPV4 : NFPROTO.IPV6, reg_addr_min: addrMin, reg_addr_max: addrMax };
  if (o.ports) {
    for (const p of [o.ports.from, o.ports.to]) if (!Number.isInteger(p) || p < 1 || p > 0xffff) fail(`DNAT port ${p} is not 1-65535`);
    if (o.ports.from > o.ports.to) fail(`DNAT port range ${o.ports.from}-${o.ports.to} is reversed`);
    const protoMin = load(be16(o.ports.from));
    nat.reg_proto_min = protoMin;
    nat.reg_proto_max = o.ports.to === o.ports.from ? protoMin : load(be16(o.ports.to));
    flags |= NAT_FLAG.PROTO_SPECIFIED;
  }
  if (o.random) flags |= NAT_FLAG.PROTO_RANDOM;
  if (o.randomFully) flags |= NAT_FLAG.PROTO_RANDOM_FULLY;
  if (o.persistent) flags |= NAT_FLAG.PERSISTENT;
  nat.flags = flags;
  return [...out, nat];
}

/**
 * `--set-xmark value/mask` is mark = (mark & ~mask) ^ value: one bitwise on the loaded mark, which
 * nft prints as `meta mark set meta mark | 0x4000` for --or-mark. A full mask sets the mark outright,
 * which nft writes as an immediate.
 */
function markExprs(o: MarkTargetOptions): RawNftExpr[] {
  for (const [k, v] of [['value', o.value], ['mask', o.mask]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail(`MARK ${k} ${v} is not a u32`);
  }
  const set: RawNftExpr = { name: 'meta', key: META.MARK, sreg: REG.R1 };
  if (o.mask >>> 0 === 0xffffffff) return [{ name: 'immediate', dreg: REG.R1, data: u32(o.value) }, set];
  return [metaLoad(META.MARK), bitwise(u32(~o.mask >>> 0), u32(o.value)), set];
}

function ctExprs(o: CtOptions): RawNftExpr[] {
  const extra = o.helper || o.timeout || o.ctEvents.length || o.expectationEvents.length || o.zone || o.zoneFromMark;
  if (!o.notrack || extra) fail('CT other than --notrack is not translated to nftables');
  return [{ name: 'notrack' }];
}

function targetExprs(rule: RuleSpec, o: NftEncodeOptions): RawNftExpr[] {
  const t = rule.target;
  switch (t.kind) {
    case 'none':
      return [];
    case 'verdict':
      if (t.verdict === 'ACCEPT') return [verdict(NF_ACCEPT)];
      if (t.verdict === 'DROP') return [verdict(NF_DROP)];
      if (t.verdict === 'RETURN') return [verdict(VERDICT.RETURN)];
      return fail(`-j ${t.verdict} is not translated to nftables`);
    case 'jump':
      return [verdict(t.goto ? VERDICT.GOTO : VERDICT.JUMP, o.chainName(t.chain))];
    case 'extension': {
      if (t.options === undefined || t.options === null) fail(`-j ${t.name} given as raw bytes: nodenet translates only decoded options to nftables`);
      if (t.name === 'DNAT') return dnatExprs(t.options as NatOptions, o.family);
      if (t.name === 'MARK') return markExprs(t.options as MarkTargetOptions);
      if (t.name === 'CT') return ctExprs(t.options as CtOptions);
      return fail(`-j ${t.name} is not translated to nftables`);
    }
  }
}

/**
 * The expressions and userdata of one rule: header matches in iptables-save's order (source,
 * destination, interfaces, protocol), then the matches in order, a counter (so nodenet's rules
 * count packets as its iptables rules do), then the target. The protocol compare goes right before
 * the first port match when there is one: `nft list` prints it only as the port match's implied
 * dependency (`udp dport 53`), and nft, reading that line back, puts the dependency there; so the
 * line nft prints for nodenet's rule is one nft turns into exactly nodenet's expressions. Throws
 * RangeError for anything with no faithful nftables form.
 */
export function encodeNftRule(rule: RuleSpec, o: NftEncodeOptions): NftRule {
  if (rule.fragment) fail('-f (fragments) is not translated to nftables');
  const header: RawNftExpr[] = [];
  if (rule.source) header.push(...addressMatch(o.family, 'saddr', rule.source));
  if (rule.destination) header.push(...addressMatch(o.family, 'daddr', rule.destination));
  if (rule.inInterface) header.push(...interfaceMatch(META.IIFNAME, '-i', rule.inInterface));
  if (rule.outInterface) header.push(...interfaceMatch(META.OIFNAME, '-o', rule.outInterface));
  const protocol = protocolMatch(rule);
  let comment: string | null = null;
  const matches: Array<{ exprs: RawNftExpr[]; ports: boolean }> = [];
  for (const m of rule.matches ?? []) {
    if (m.name === 'comment') {
      if (comment !== null) fail('more than one comment: an nftables rule has one');
      comment = options<{ comment: string }>(m).comment;
      continue;
    }
    matches.push({ exprs: matchExprs(rule, m), ports: PORT_PROTOCOLS[m.name] !== undefined });
  }
  const firstPorts = matches.findIndex((m) => m.ports && m.exprs.length > 0);
  if (firstPorts >= 0) matches.splice(firstPorts, 0, { exprs: protocol, ports: false });
  else header.push(...protocol);
  const exprs = [...header, ...matches.flatMap((m) => m.exprs), { name: 'counter', packets: 0n, bytes: 0n }, ...targetExprs(rule, o)];
  return { exprs, userdata: comment === null ? null : encodeComment(comment) };
}
