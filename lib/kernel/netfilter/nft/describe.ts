// nf_tables expressions, as dumped, back into one line of nft's own syntax, for change lines and
// diagnostics: `ip saddr 10.244.0.0/16 tcp dport 80 counter dnat to 10.96.0.10:80 comment "shop/web"`.
// It follows what the expressions do (registers loaded, masked, compared, used), so it reads any
// rule, not only nodenet's; a shape it does not know is shown as `name(attr=value,...)`, and
// describing never throws.
import { endianness } from 'node:os';

import { formatIPv4, formatIPv6, prefixLength } from '../addresses.js';
import { protocolName } from '../protocols.js';
import type { IpFamily } from '../types.js';
import type { RawNftExpr } from '../../native.js';
import { BITWISE, CMP, CT_KEY, CT_STATE, FIB_FLAG, FIB_RESULT, META, NAT_FLAG, NAT_TYPE, NF_ACCEPT, NF_DROP, PAYLOAD_BASE, RANGE, RTN_TYPES, VERDICT } from './constants.js';
import { decodeComment } from './userdata.js';

export interface DescribeOptions {
  /** Print counter values (`counter packets 3 bytes 180`); otherwise just `counter`. */
  counters?: boolean;
}

const HOST_LE = endianness() === 'LE';

type Attr = string | number | bigint | Buffer;

/** The generic form of an expression: `name(attr=value,...)`, binary attributes in hex. */
export function genericExpr(e: RawNftExpr): string {
  const attrs = Object.keys(e)
    .filter((k) => k !== 'name')
    .map((k) => {
      const v = e[k] as Attr;
      return `${k}=${Buffer.isBuffer(v) ? '0x' + v.toString('hex') : String(v)}`;
    });
  return `${e.name}(${attrs.join(',')})`;
}

function hostU32(b: Buffer): number | null {
  if (b.length !== 4) return null;
  return HOST_LE ? b.readUInt32LE(0) : b.readUInt32BE(0);
}

const hex = (n: number) => '0x' + (n >>> 0).toString(16);
/** Marks and masks as nft prints them, 0x%08x, so a described rule reads as `nft list` shows it. */
const hex8 = (n: number) => '0x' + (n >>> 0).toString(16).padStart(8, '0');

function rawHex(b: Buffer): string {
  return '0x' + b.toString('hex');
}

// ---- what a register holds ---------------------------------------------------------------------

type Value =
  | { k: 'payload'; base: number; offset: number; len: number }
  | { k: 'meta'; key: number }
  | { k: 'ct'; key: number }
  | { k: 'fib'; flags: number; result: number }
  | { k: 'imm'; data: Buffer }
  | { k: 'masked'; of: Value; mask: Buffer; xor: Buffer }
  | { k: 'opaque'; text: string };

/** How a compared value is named and its data printed. */
interface Field {
  name: string;
  format(data: Buffer): string;
  /** Address fields: the full length, so a mask or a short load reads as a prefix. */
  address?: { size: number; family: IpFamily };
  /** Transport fields name the protocol nft infers from an l4proto compare before them. */
  impliesL4?: number;
  flags?: ReadonlyArray<readonly [number, string]>;
}

const META_NAMES: Readonly<Record<number, string>> = {
  [META.LEN]: 'meta length',
  [META.PROTOCOL]: 'meta protocol',
  [META.PRIORITY]: 'meta priority',
  [META.MARK]: 'meta mark',
  [META.IIF]: 'iif',
  [META.OIF]: 'oif',
  [META.IIFNAME]: 'iifname',
  [META.OIFNAME]: 'oifname',
  [META.IIFTYPE]: 'iiftype',
  [META.OIFTYPE]: 'oiftype',
  [META.SKUID]: 'meta skuid',
  [META.SKGID]: 'meta skgid',
  [META.NFTRACE]: 'meta nftrace',
  [META.RTCLASSID]: 'meta rtclassid',
  [META.SECMARK]: 'meta secmark',
  [META.NFPROTO]: 'meta nfproto',
  [META.L4PROTO]: 'meta l4proto',
};

const CT_STATE_NAMES: ReadonlyArray<readonly [number, string]> = [
  [CT_STATE.INVALID, 'invalid'],
  [CT_STATE.ESTABLISHED, 'established'],
  [CT_STATE.RELATED, 'related'],
  [CT_STATE.NEW, 'new'],
  [CT_STATE.UNTRACKED, 'untracked'],
];

const L4_NAMES: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp', 33: 'dccp', 132: 'sctp', 136: 'udplite' };

function ifname(b: Buffer): string {
  const end = b.indexOf(0);
  // No NUL in the compared bytes: nft's wildcard, a compare of the prefix only.
  return end < 0 ? JSON.stringify(b.toString('latin1') + '*') : JSON.stringify(b.subarray(0, end).toString('latin1'));
}

function flagNames(v: number, names: ReadonlyArray<readonly [number, string]>): string {
  const known = names.filter(([bit]) => v & bit);
  const rest = names.reduce((r, [bit]) => r & ~bit, v);
  const parts = known.map(([, n]) => n);
  if (rest || parts.length === 0) parts.push(hex(rest));
  return parts.join(',');
}

function u32Or(b: Buffer, f: (n: number) => string): string {
  const n = hostU32(b);
  return n === null ? rawHex(b) : f(n);
}

const RAW_BASES = ['ll', 'nh', 'th', 'ih'];

function rawPayload(v: { base: number; offset: number; len: number }): string {
  return `@${RAW_BASES[v.base] ?? v.base},${v.offset * 8},${v.len * 8}`;
}

function payloadField(v: { base: number; offset: number; len: number }, family: IpFamily, l4: number | null): Field | null {
  if (v.base === PAYLOAD_BASE.NETWORK) {
    const ip = family === 'ipv4' ? 'ip' : 'ip6';
    const size = family === 'ipv4' ? 4 : 16;
    const fmt = (b: Buffer) => {
      const full = Buffer.alloc(size);
      b.copy(full, 0, 0, Math.min(b.length, size));
      return family === 'ipv4' ? formatIPv4(full) : formatIPv6(full);
    };
    const fields: Record<number, string> = family === 'ipv4' ? { 12: 'saddr', 16: 'daddr' } : { 8: 'saddr', 24: 'daddr' };
    const which = fields[v.offset];
    if (which && v.len <= size) return { name: `${ip} ${which}`, format: fmt, address: { size, family } };
    const proto = (b: Buffer) => (b.length === 1 ? (protocolName(b[0]!) ?? String(b[0])) : rawHex(b));
    if (family === 'ipv4' && v.offset === 9 && v.len === 1) return { name: 'ip protocol', format: proto };
    if (family === 'ipv6' && v.offset === 6 && v.len === 1) return { name: 'ip6 nexthdr', format: proto };
    return null;
  }
  if (v.base === PAYLOAD_BASE.TRANSPORT && v.len === 2 && (v.offset === 0 || v.offset === 2)) {
    const name = l4 !== null ? L4_NAMES[l4] : undefined;
    const field: Field = { name: `${name ?? 'th'} ${v.offset === 0 ? 'sport' : 'dport'}`, format: (b) => (b.length === 2 ? String(b.readUInt16BE(0)) : rawHex(b)) };
    if (name) field.impliesL4 = l4!;
    return field;
  }
  return null;
}

const CT_NAMES: Readonly<Record<number, string>> = { [CT_KEY.STATE]: 'ct state', [CT_KEY.DIRECTION]: 'ct direction', [CT_KEY.STATUS]: 'ct status', [CT_KEY.MARK]: 'ct mark' };

function fieldOf(v: Value, family: IpFamily, l4: number | null): Field {
  switch (v.k) {
    case 'payload':
      return payloadField(v, family, l4) ?? { name: rawPayload(v), format: rawHex };
    case 'meta': {
      const name = META_NAMES[v.key] ?? `meta key ${v.key}`;
      if (v.key === META.L4PROTO) return { name, format: (b) => (b.length === 1 ? (protocolName(b[0]!) ?? String(b[0])) : rawHex(b)) };
      if (v.key === META.IIFNAME || v.key === META.OIFNAME) return { name, format: ifname };
      if (v.key === META.MARK) return { name, format: (b) => u32Or(b, hex8) };
      return { name, format: (b) => u32Or(b, String) };
    }
    case 'ct': {
      const name = CT_NAMES[v.key] ?? `ct key ${v.key}`;
      if (v.key === CT_KEY.STATE) return { name, format: (b) => u32Or(b, (n) => flagNames(n, CT_STATE_NAMES)), flags: CT_STATE_NAMES };
      if (v.key === CT_KEY.MARK) return { name, format: (b) => u32Or(b, hex8) };
      return { name, format: (b) => u32Or(b, String) };
    }
    case 'fib':
      if (v.result === FIB_RESULT.ADDRTYPE) return { name: fibText(v.flags, v.result), format: (b) => u32Or(b, (n) => RTN_TYPES[n] ?? String(n)) };
      return { name: fibText(v.flags, v.result), format: rawHex };
    default:
      return { name: describeValue(v, family, l4), format: rawHex };
  }
}

function fibText(flags: number, result: number): string {
  const keys: string[] = [];
  if (flags & FIB_FLAG.SADDR) keys.push('saddr');
  if (flags & FIB_FLAG.DADDR) keys.push('daddr');
  if (flags & FIB_FLAG.MARK) keys.push('mark');
  if (flags & FIB_FLAG.IIF) keys.push('iif');
  if (flags & FIB_FLAG.OIF) keys.push('oif');
  const what = result === FIB_RESULT.ADDRTYPE ? 'type' : result === FIB_RESULT.OIF ? 'oif' : result === FIB_RESULT.OIFNAME ? 'oifname' : `result ${result}`;
  return `fib ${keys.join(' . ')} ${what}${flags & FIB_FLAG.PRESENT ? ' exists' : ''}`;
}

/** A register's content as an expression (the right side of a `set`, or an unknown compare). */
function describeValue(v: Value, family: IpFamily, l4: number | null): string {
  switch (v.k) {
    case 'payload':
      return payloadField(v, family, l4)?.name ?? rawPayload(v);
    case 'meta':
      return META_NAMES[v.key] ?? `meta key ${v.key}`;
    case 'ct':
      return CT_NAMES[v.key] ?? `ct key ${v.key}`;
    case 'fib':
      return fibText(v.flags, v.result);
    case 'imm':
      return u32Or(v.data, hex8);
    case 'masked':
      return maskedText(describeValue(v.of, family, l4), v.mask, v.xor);
    case 'opaque':
      return v.text;
  }
}

/** (v & mask) ^ xor the way nft prints it: `| x` when it only sets bits, `& m` when it only clears. */
function maskedText(of: string, mask: Buffer, xor: Buffer): string {
  const m = hostU32(mask);
  const x = hostU32(xor);
  if (m === null || x === null) return `${of} & ${rawHex(mask)} ^ ${rawHex(xor)}`;
  if (x === 0) return `${of} & ${hex8(m)}`;
  if (m === 0xffffffff) return `${of} ^ ${hex8(x)}`;
  if ((m | x) >>> 0 === 0xffffffff && (m & x) === 0) return `${of} | ${hex8(x)}`;
  // (v & m) ^ x with no bit of x kept by m sets x's bits; nft shows the mask with them included.
  if ((m & x) === 0) return `${of} & ${hex8((m | x) >>> 0)} | ${hex8(x)}`;
  return `${of} & ${hex8(m)} ^ ${hex8(x)}`;
}

const OPS: Readonly<Record<number, string>> = { [CMP.EQ]: '', [CMP.NEQ]: '!= ', [CMP.LT]: '< ', [CMP.LTE]: '<= ', [CMP.GT]: '> ', [CMP.GTE]: '>= ' };

interface Token {
  text: string;
  /** An `meta l4proto X` compare: dropped when a transport field of X follows, as nft does. */
  l4?: number;
  dropped?: boolean;
}

function num(e: RawNftExpr, k: string): number | null {
  const v = e[k];
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null;
}

function buf(e: RawNftExpr, k: string): Buffer | null {
  const v = e[k];
  return Buffer.isBuffer(v) ? v : null;
}

function natText(e: RawNftExpr, regs: Map<number, Value>, family: IpFamily): string | null {
  const type = num(e, 'type');
  const data = (k: string): Buffer | null => {
    const r = num(e, k);
    if (r === null) return null;
    const v = regs.get(r);
    return v?.k === 'imm' ? v.data : null;
  };
  const addr = (b: Buffer | null) => (b === null ? null : b.length === 4 ? formatIPv4(b) : b.length === 16 ? formatIPv6(b) : null);
  const port = (b: Buffer | null) => (b !== null && b.length === 2 ? b.readUInt16BE(0) : null);
  const min = addr(data('reg_addr_min'));
  const max = addr(data('reg_addr_max'));
  const pmin = port(data('reg_proto_min'));
  const pmax = port(data('reg_proto_max'));
  if ((num(e, 'reg_addr_min') !== null && min === null) || (num(e, 'reg_proto_min') !== null && pmin === null)) return null;
  let to = '';
  if (min !== null) {
    const range = max !== null && max !== min ? `${min}-${max}` : min;
    to = family === 'ipv6' && pmin !== null ? `[${range}]` : range;
  }
  if (pmin !== null) to += `:${pmin}${pmax !== null && pmax !== pmin ? `-${pmax}` : ''}`;
  const flags = num(e, 'flags') ?? 0;
  let s = `${type === NAT_TYPE.SNAT ? 'snat' : 'dnat'} to ${to}`;
  if (flags & NAT_FLAG.PROTO_RANDOM) s += ' random';
  if (flags & NAT_FLAG.PROTO_RANDOM_FULLY) s += ' fully-random';
  if (flags & NAT_FLAG.PERSISTENT) s += ' persistent';
  return s;
}

function verdictText(code: number, chain: string | null): string {
  switch (code) {
    case NF_ACCEPT:
      return 'accept';
    case NF_DROP:
      return 'drop';
    case VERDICT.RETURN:
      return 'return';
    case VERDICT.CONTINUE:
      return 'continue';
    case VERDICT.BREAK:
      return 'break';
    case VERDICT.JUMP:
      return `jump ${chain ?? '?'}`;
    case VERDICT.GOTO:
      return `goto ${chain ?? '?'}`;
    default:
      return `verdict ${code}`;
  }
}

/** A compare of a register's value, in nft's words. */
function compareText(v: Value, op: number, data: Buffer, family: IpFamily, l4: number | null): { text: string; impliesL4?: number } {
  const opText = OPS[op] ?? `op${op} `;
  if (v.k === 'masked') {
    const f = fieldOf(v.of, family, l4);
    const zeroXor = v.xor.every((b) => b === 0);
    // ip saddr 10.0.0.0/8: a contiguous mask over an address field.
    if (f.address && zeroXor && (op === CMP.EQ || op === CMP.NEQ)) {
      const bits = prefixLength(v.mask);
      if (bits >= 0) return { text: `${f.name} ${opText}${f.format(data)}/${bits}` };
      return { text: `${f.name} & ${f.format(v.mask)} ${op === CMP.EQ ? '==' : '!='} ${f.format(data)}` };
    }
    // ct state established,related: any of the flags; `ct state ! established,related`: none.
    if (f.flags && zeroXor && data.every((b) => b === 0) && (op === CMP.EQ || op === CMP.NEQ)) {
      const names = u32Or(v.mask, (n) => flagNames(n, f.flags!));
      return { text: op === CMP.NEQ ? `${f.name} ${names}` : `${f.name} ! ${names}` };
    }
    const lhs = zeroXor ? `${f.name} & ${f.format(v.mask)}` : maskedText(f.name, v.mask, v.xor);
    return { text: `${lhs} ${op === CMP.EQ ? '==' : opText.trim() || '=='} ${f.format(data)}` };
  }
  const f = fieldOf(v, family, l4);
  // A load shorter than its address field compares a byte-aligned prefix.
  if (f.address && v.k === 'payload' && v.len < f.address.size && (op === CMP.EQ || op === CMP.NEQ)) {
    return { text: `${f.name} ${opText}${f.format(data)}/${v.len * 8}` };
  }
  const out: { text: string; impliesL4?: number } = { text: `${f.name} ${opText}${f.format(data)}` };
  if (f.impliesL4 !== undefined) out.impliesL4 = f.impliesL4;
  return out;
}

function describeExprs(exprs: readonly RawNftExpr[], family: IpFamily, o: DescribeOptions): Token[] {
  const regs = new Map<number, Value>();
  const tokens: Token[] = [];
  let l4: number | null = null;
  const consumeL4 = (proto: number | undefined) => {
    if (proto === undefined) return;
    for (let i = tokens.length - 1; i >= 0; i--) {
      const t = tokens[i]!;
      if (t.l4 === proto && !t.dropped) {
        t.dropped = true;
        return;
      }
    }
  };
  const reg = (e: RawNftExpr, k: string): Value | undefined => {
    const r = num(e, k);
    return r === null ? undefined : regs.get(r);
  };
  for (let i = 0; i < exprs.length; i++) {
    const e = exprs[i]!;
    const generic = () => tokens.push({ text: genericExpr(e) });
    const dreg = num(e, 'dreg');
    switch (e.name) {
      case 'payload': {
        const base = num(e, 'base');
        const offset = num(e, 'offset');
        const len = num(e, 'len');
        if (dreg === null || base === null || offset === null || len === null) generic();
        else regs.set(dreg, { k: 'payload', base, offset, len });
        break;
      }
      case 'meta': {
        const key = num(e, 'key');
        const sreg = num(e, 'sreg');
        if (key !== null && dreg !== null) regs.set(dreg, { k: 'meta', key });
        else if (key !== null && sreg !== null && regs.has(sreg)) tokens.push({ text: `${META_NAMES[key] ?? `meta key ${key}`} set ${describeValue(regs.get(sreg)!, family, l4)}` });
        else generic();
        break;
      }
      case 'ct': {
        const key = num(e, 'key');
        if (key !== null && dreg !== null) regs.set(dreg, { k: 'ct', key });
        else generic();
        break;
      }
      case 'fib': {
        const flags = num(e, 'flags');
        const result = num(e, 'result');
        if (flags !== null && result !== null && dreg !== null) regs.set(dreg, { k: 'fib', flags, result });
        else generic();
        break;
      }
      case 'bitwise': {
        const of = reg(e, 'sreg');
        const mask = buf(e, 'mask');
        const xor = buf(e, 'xor');
        const op = num(e, 'op') ?? BITWISE.BOOL;
        if (of && mask && xor && dreg !== null && op === BITWISE.BOOL) regs.set(dreg, { k: 'masked', of, mask, xor });
        else if (dreg !== null) regs.set(dreg, { k: 'opaque', text: genericExpr(e) });
        else generic();
        break;
      }
      case 'immediate': {
        const data = buf(e, 'data');
        const code = num(e, 'verdict');
        if (dreg === 0 && code !== null) tokens.push({ text: verdictText(code, typeof e.chain === 'string' ? e.chain : null) });
        else if (dreg !== null && data) regs.set(dreg, { k: 'imm', data });
        else generic();
        break;
      }
      case 'cmp': {
        const v = reg(e, 'sreg');
        const op = num(e, 'op');
        const data = buf(e, 'data');
        if (!v || op === null || !data) {
          generic();
          break;
        }
        const next = exprs[i + 1];
        // nft writes `tcp dport 1024-65535` as >= and <= on the same register.
        if (op === CMP.GTE && next?.name === 'cmp' && num(next, 'op') === CMP.LTE && num(next, 'sreg') === num(e, 'sreg') && buf(next, 'data')) {
          const f = fieldOf(v, family, l4);
          tokens.push({ text: `${f.name} ${f.format(data)}-${f.format(buf(next, 'data')!)}` });
          consumeL4(f.impliesL4);
          i++;
          break;
        }
        const c = compareText(v, op, data, family, l4);
        const token: Token = { text: c.text };
        if (v.k === 'meta' && v.key === META.L4PROTO && op === CMP.EQ && data.length === 1) {
          l4 = data[0]!;
          token.l4 = l4;
        }
        tokens.push(token);
        consumeL4(c.impliesL4);
        break;
      }
      case 'range': {
        const v = reg(e, 'sreg');
        const op = num(e, 'op');
        const from = buf(e, 'from_data') ?? buf(e, 'from');
        const to = buf(e, 'to_data') ?? buf(e, 'to');
        if (!v || op === null || !from || !to) {
          generic();
          break;
        }
        const f = fieldOf(v, family, l4);
        tokens.push({ text: `${f.name} ${op === RANGE.NEQ ? '!= ' : ''}${f.format(from)}-${f.format(to)}` });
        consumeL4(f.impliesL4);
        break;
      }
      case 'counter': {
        const packets = e.packets;
        const bytes = e.bytes;
        tokens.push({ text: o.counters && packets !== undefined && bytes !== undefined ? `counter packets ${String(packets)} bytes ${String(bytes)}` : 'counter' });
        break;
      }
      case 'nat': {
        const text = natText(e, regs, family);
        if (text === null) generic();
        else tokens.push({ text });
        break;
      }
      case 'notrack':
        tokens.push({ text: 'notrack' });
        break;
      default:
        generic();
    }
  }
  return tokens;
}

/** One rule in nft's syntax (its comment last, as `nft list` prints it). Never throws. */
export function describeNftRule(rule: { exprs: readonly RawNftExpr[]; userdata?: Buffer | null }, family: IpFamily, o: DescribeOptions = {}): string {
  let parts: string[];
  try {
    parts = describeExprs(rule.exprs, family, o)
      .filter((t) => !t.dropped)
      .map((t) => t.text);
  } catch {
    parts = rule.exprs.map((e) => {
      try {
        return genericExpr(e);
      } catch {
        return String(e.name);
      }
    });
  }
  let comment: string | null = null;
  try {
    comment = decodeComment(rule.userdata);
  } catch {
    comment = null;
  }
  if (comment !== null) parts.push(`comment ${JSON.stringify(comment)}`);
  return parts.join(' ');
}
