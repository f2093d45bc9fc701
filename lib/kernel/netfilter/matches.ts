// Match extensions nodenet decodes. Layouts follow the kernel's uapi structs; the printed form
// follows iptables 1.8.9's save functions, so that a decoded rule renders exactly as
// iptables-save prints it.
import { formatIPv4, formatIPv6, prefixLength, putCidr } from './addresses.js';
import { hex, registerCodec, saveString, StructWriter, type ExtensionCodec } from './extension.js';
import type { Payload } from './payload.js';
import type { IpFamily, Negatable } from './types.js';

export interface PortRange {
  from: number;
  to: number;
}

function portRange(from: number, to: number, separator = ':'): string {
  return from === to ? `${from}` : `${from}${separator}${to}`;
}

function not(invert: boolean): string {
  return invert ? ' !' : '';
}

// ---- tcp / udp ---------------------------------------------------------------------------------

const TCP_FLAGS: ReadonlyArray<readonly [number, string]> = [
  [0x01, 'FIN'],
  [0x02, 'SYN'],
  [0x04, 'RST'],
  [0x08, 'PSH'],
  [0x10, 'ACK'],
  [0x20, 'URG'],
];

function tcpFlagNames(bits: number): string[] {
  return TCP_FLAGS.filter(([bit]) => bits & bit).map(([, name]) => name);
}

function tcpFlagBits(names: string[]): number {
  return names.reduce((bits, name) => {
    if (name === 'ALL') return bits | 0x3f;
    if (name === 'NONE') return bits;
    const flag = TCP_FLAGS.find(([, n]) => n === name);
    if (!flag) throw new RangeError(`unknown TCP flag ${JSON.stringify(name)}`);
    return bits | flag[0];
  }, 0);
}

// xt_tcp/xt_udp port ranges; [0, 65535] means any.
function writePorts(w: StructWriter, offset: number, ports: Negatable<PortRange> | null, what: string): void {
  const from = ports ? ports.value.from : 0;
  const to = ports ? ports.value.to : 0xffff;
  if (!Number.isInteger(from) || from < 0 || from > 0xffff) throw new RangeError(`${what} port ${from} is not 0-65535`);
  if (!Number.isInteger(to) || to < 0 || to > 0xffff) throw new RangeError(`${what} port ${to} is not 0-65535`);
  if (from > to) throw new RangeError(`${what} port range ${from}:${to} is reversed`);
  w.u16(offset, from).u16(offset + 2, to);
}

function saveTcpFlags(names: string[]): string {
  return names.length ? names.join(',') : 'NONE';
}

export interface TcpOptions {
  sourcePorts: Negatable<PortRange> | null;
  destinationPorts: Negatable<PortRange> | null;
  /** `--tcp-option N` */
  option: Negatable<number> | null;
  /** `--tcp-flags MASK COMP`, as flag names (empty: NONE). */
  flags: Negatable<{ mask: string[]; compare: string[] }> | null;
}

function decodePorts(p: Payload, offset: number, invert: boolean): Negatable<PortRange> | null {
  const from = p.u16(offset);
  const to = p.u16(offset + 2);
  return from === 0 && to === 0xffff ? null : { value: { from, to }, invert };
}

function savePorts(option: string, ports: Negatable<PortRange> | null): string {
  if (!ports) return '';
  return `${not(ports.invert)} ${option} ${portRange(ports.value.from, ports.value.to)}`;
}

registerCodec({
  kind: 'match',
  name: 'tcp',
  revision: 0,
  decode(p) {
    const inv = p.u8(11);
    const option = p.u8(8);
    const mask = p.u8(9);
    return {
      sourcePorts: decodePorts(p, 0, (inv & 0x1) !== 0),
      destinationPorts: decodePorts(p, 4, (inv & 0x2) !== 0),
      option: option || inv & 0x8 ? { value: option, invert: (inv & 0x8) !== 0 } : null,
      flags: mask || inv & 0x4 ? { value: { mask: tcpFlagNames(mask), compare: tcpFlagNames(p.u8(10)) }, invert: (inv & 0x4) !== 0 } : null,
    };
  },
  save(o) {
    let s = savePorts('--sport', o.sourcePorts) + savePorts('--dport', o.destinationPorts);
    if (o.option) s += `${not(o.option.invert)} --tcp-option ${o.option.value}`;
    if (o.flags) s += `${not(o.flags.invert)} --tcp-flags ${saveTcpFlags(o.flags.value.mask)} ${saveTcpFlags(o.flags.value.compare)}`;
    return s;
  },
  size: 12,
  encodeInto(o, w) {
    writePorts(w, 0, o.sourcePorts, 'source');
    writePorts(w, 4, o.destinationPorts, 'destination');
    w.u8(8, o.option?.value ?? 0);
    w.u8(9, o.flags ? tcpFlagBits(o.flags.value.mask) : 0);
    w.u8(10, o.flags ? tcpFlagBits(o.flags.value.compare) : 0);
    w.u8(11, (o.sourcePorts?.invert ? 0x1 : 0) | (o.destinationPorts?.invert ? 0x2 : 0) | (o.flags?.invert ? 0x4 : 0) | (o.option?.invert ? 0x8 : 0));
  },
} satisfies ExtensionCodec<TcpOptions>);

export interface UdpOptions {
  sourcePorts: Negatable<PortRange> | null;
  destinationPorts: Negatable<PortRange> | null;
}

registerCodec({
  kind: 'match',
  name: 'udp',
  revision: 0,
  decode(p) {
    const inv = p.u8(8);
    return { sourcePorts: decodePorts(p, 0, (inv & 0x1) !== 0), destinationPorts: decodePorts(p, 4, (inv & 0x2) !== 0) };
  },
  save(o) {
    return savePorts('--sport', o.sourcePorts) + savePorts('--dport', o.destinationPorts);
  },
  size: 10,
  encodeInto(o, w) {
    writePorts(w, 0, o.sourcePorts, 'source');
    writePorts(w, 4, o.destinationPorts, 'destination');
    w.u8(8, (o.sourcePorts?.invert ? 0x1 : 0) | (o.destinationPorts?.invert ? 0x2 : 0));
  },
} satisfies ExtensionCodec<UdpOptions>);

// ---- sctp --------------------------------------------------------------------------------------

// struct xt_sctp_info: u16 dpts[2]; u16 spts[2]; u32 chunkmap[64]; u32 chunk_match_type;
// struct xt_sctp_flag_info flag_info[4] (u8 chunktype, flag, flag_mask); int flag_count; u32 flags;
// u32 invflags. Destination ports come first, unlike tcp/udp.
const SCTP = { SIZE: 292, DPTS: 0, SPTS: 4, FLAG_INFO: 268, FLAGS: 284, INVFLAGS: 288, SRC_PORTS: 0x1, DEST_PORTS: 0x2, CHUNK_TYPES: 0x4 } as const;

export interface SctpOptions {
  sourcePorts: Negatable<PortRange> | null;
  destinationPorts: Negatable<PortRange> | null;
}

function writeSctpPorts(w: StructWriter, offset: number, ports: Negatable<PortRange> | null, what: string): number {
  if (!ports) return 0;
  const { from, to } = ports.value;
  for (const p of [from, to]) if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new RangeError(`${what} port ${p} is not 0-65535`);
  if (from > to) throw new RangeError(`${what} port range ${from}:${to} is reversed`);
  w.u16(offset, from).u16(offset + 2, to);
  return 1;
}

registerCodec({
  kind: 'match',
  name: 'sctp',
  revision: 0,
  decode(p) {
    const flags = p.u32(SCTP.FLAGS);
    const inv = p.u32(SCTP.INVFLAGS);
    // Chunk-type matching has no place in these options: throwing keeps the payload raw, shown
    // undecoded, rather than silently dropping a condition.
    if (flags & SCTP.CHUNK_TYPES) throw new RangeError('sctp --chunk-types is not decoded');
    const ports = (bit: number, offset: number): Negatable<PortRange> | null =>
      flags & bit ? { value: { from: p.u16(offset), to: p.u16(offset + 2) }, invert: (inv & bit) !== 0 } : null;
    return { sourcePorts: ports(SCTP.SRC_PORTS, SCTP.SPTS), destinationPorts: ports(SCTP.DEST_PORTS, SCTP.DPTS) };
  },
  // libxt_sctp's save prints the ports as given, even 0:65535, whenever the flag is set.
  save(o) {
    return savePorts('--sport', o.sourcePorts) + savePorts('--dport', o.destinationPorts);
  },
  size: SCTP.SIZE,
  encodeInto(o, w) {
    const src = writeSctpPorts(w, SCTP.SPTS, o.sourcePorts, 'source') ? SCTP.SRC_PORTS : 0;
    const dst = writeSctpPorts(w, SCTP.DPTS, o.destinationPorts, 'destination') ? SCTP.DEST_PORTS : 0;
    // sctp_init marks the four chunk-flag slots unused with chunk type 0xff.
    for (let i = 0; i < 4; i++) w.u8(SCTP.FLAG_INFO + 3 * i, 0xff);
    const inv = (o.sourcePorts?.invert ? SCTP.SRC_PORTS : 0) | (o.destinationPorts?.invert ? SCTP.DEST_PORTS : 0);
    w.u32(SCTP.FLAGS, src | dst).u32(SCTP.INVFLAGS, inv);
  },
} satisfies ExtensionCodec<SctpOptions>);

// ---- icmp / icmp6 ------------------------------------------------------------------------------

export interface IcmpOptions {
  /** 255 means any type. */
  type: number;
  /** Code range; [0, 255] matches every code. */
  codes: [number, number];
  invert: boolean;
}

function decodeIcmp(p: Payload): IcmpOptions {
  return { type: p.u8(0), codes: [p.u8(1), p.u8(2)], invert: (p.u8(3) & 0x1) !== 0 };
}

function saveIcmp(option: string, o: IcmpOptions, anyHack: boolean): string {
  if (anyHack && o.type === 0xff) return `${not(o.invert)} ${option} any`;
  const code = o.codes[0] !== 0 || o.codes[1] !== 0xff ? `/${o.codes[0]}` : '';
  return `${not(o.invert)} ${option} ${o.type}${code}`;
}

registerCodec({
  kind: 'match',
  name: 'icmp',
  revision: 0,
  decode: decodeIcmp,
  save: (o) => saveIcmp('--icmp-type', o, true),
} satisfies ExtensionCodec<IcmpOptions>);

registerCodec({
  kind: 'match',
  name: 'icmp6',
  revision: 0,
  decode: decodeIcmp,
  save: (o) => saveIcmp('--icmpv6-type', o, false),
} satisfies ExtensionCodec<IcmpOptions>);

// ---- comment -----------------------------------------------------------------------------------

export interface CommentOptions {
  comment: string;
}

registerCodec({
  kind: 'match',
  name: 'comment',
  revision: 0,
  decode: (p) => ({ comment: p.cstring(0, 256) }),
  save: (o) => ' --comment' + saveString(o.comment),
  size: 256,
  encodeInto: (o, w) => void w.cstring(0, 256, o.comment, 'comment'),
} satisfies ExtensionCodec<CommentOptions>);

// ---- addrtype ----------------------------------------------------------------------------------

const ADDRESS_TYPES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'];

function addressTypeNames(mask: number): string[] {
  return ADDRESS_TYPES.filter((_, i) => mask & (1 << i));
}

function addressTypeBits(names: string[]): number {
  return names.reduce((bits, name) => {
    const i = ADDRESS_TYPES.indexOf(name);
    if (i < 0) throw new RangeError(`unknown address type ${JSON.stringify(name)} (one of ${ADDRESS_TYPES.join(', ')})`);
    return bits | (1 << i);
  }, 0);
}

export interface AddrtypeOptions {
  sourceTypes: Negatable<string[]> | null;
  destinationTypes: Negatable<string[]> | null;
  limitInInterface: boolean;
  limitOutInterface: boolean;
}

function saveAddrtype(o: AddrtypeOptions): string {
  let s = '';
  if (o.sourceTypes) s += `${not(o.sourceTypes.invert)} --src-type ${o.sourceTypes.value.join(',')}`;
  if (o.destinationTypes) s += `${not(o.destinationTypes.invert)} --dst-type ${o.destinationTypes.value.join(',')}`;
  if (o.limitInInterface) s += ' --limit-iface-in';
  if (o.limitOutInterface) s += ' --limit-iface-out';
  return s;
}

registerCodec({
  kind: 'match',
  name: 'addrtype',
  revision: 1,
  decode(p) {
    const source = p.u16(0);
    const dest = p.u16(2);
    const flags = p.u32(4);
    return {
      sourceTypes: source ? { value: addressTypeNames(source), invert: (flags & 0x1) !== 0 } : null,
      destinationTypes: dest ? { value: addressTypeNames(dest), invert: (flags & 0x2) !== 0 } : null,
      limitInInterface: (flags & 0x4) !== 0,
      limitOutInterface: (flags & 0x8) !== 0,
    };
  },
  save: saveAddrtype,
  size: 8,
  encodeInto(o, w) {
    w.u16(0, addressTypeBits(o.sourceTypes?.value ?? []));
    w.u16(2, addressTypeBits(o.destinationTypes?.value ?? []));
    const flags = (o.sourceTypes?.invert ? 0x1 : 0) | (o.destinationTypes?.invert ? 0x2 : 0) | (o.limitInInterface ? 0x4 : 0) | (o.limitOutInterface ? 0x8 : 0);
    w.u32(4, flags);
  },
} satisfies ExtensionCodec<AddrtypeOptions>);

registerCodec({
  kind: 'match',
  name: 'addrtype',
  revision: 0,
  decode(p) {
    const source = p.u16(0);
    const dest = p.u16(2);
    return {
      sourceTypes: source ? { value: addressTypeNames(source), invert: p.u32(4) !== 0 } : null,
      destinationTypes: dest ? { value: addressTypeNames(dest), invert: p.u32(8) !== 0 } : null,
      limitInInterface: false,
      limitOutInterface: false,
    };
  },
  save: saveAddrtype,
} satisfies ExtensionCodec<AddrtypeOptions>);

// ---- conntrack (and -m state, which iptables writes as conntrack revision 3) -------------------

const CT_STATES: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'INVALID'],
  [0x8, 'NEW'],
  [0x4, 'RELATED'],
  [0x2, 'ESTABLISHED'],
  [0x100, 'UNTRACKED'],
  [0x40, 'SNAT'],
  [0x80, 'DNAT'],
];

const CT_STATUS: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'EXPECTED'],
  [0x2, 'SEEN_REPLY'],
  [0x4, 'ASSURED'],
  [0x8, 'CONFIRMED'],
];

const CT = {
  STATE: 0x1,
  PROTO: 0x2,
  ORIGSRC: 0x4,
  ORIGDST: 0x8,
  REPLSRC: 0x10,
  REPLDST: 0x20,
  STATUS: 0x40,
  EXPIRES: 0x80,
  ORIGSRC_PORT: 0x100,
  ORIGDST_PORT: 0x200,
  REPLSRC_PORT: 0x400,
  REPLDST_PORT: 0x800,
  DIRECTION: 0x1000,
  STATE_ALIAS: 0x2000,
} as const;

export interface ConntrackOptions {
  /** `--ctstate`, or `--state` when written as `-m state` (stateAlias). */
  state: Negatable<string[]> | null;
  stateAlias: boolean;
  protocol: Negatable<number> | null;
  /** Addresses as iptables prints them: `10.0.0.1` (full mask) or `10.0.0.0/8`. */
  originalSource: Negatable<string> | null;
  originalDestination: Negatable<string> | null;
  replySource: Negatable<string> | null;
  replyDestination: Negatable<string> | null;
  originalSourcePort: Negatable<PortRange> | null;
  originalDestinationPort: Negatable<PortRange> | null;
  replySourcePort: Negatable<PortRange> | null;
  replyDestinationPort: Negatable<PortRange> | null;
  status: Negatable<string[]> | null;
  expires: Negatable<{ min: number; max: number }> | null;
  direction: 'ORIGINAL' | 'REPLY' | null;
}

// conntrack_dump_addr: the mask is omitted when it covers the whole address.
function conntrackAddress(p: Payload, offset: number, family: IpFamily): string {
  const mask = p.slice(offset + 16, family === 'ipv4' ? 4 : 16);
  const address = p.inetAddress(offset, family);
  const bits = prefixLength(mask);
  const full = family === 'ipv4' ? 32 : 128;
  if (bits === full) return address;
  if (bits < 0) return `${address}/${family === 'ipv4' ? formatIPv4(mask) : formatIPv6(mask)}`;
  return `${address}/${bits}`;
}

function decodeConntrack(p: Payload, family: IpFamily, revision: 1 | 2 | 3): ConntrackOptions {
  const flags = p.u16(146);
  const inv = p.u16(148);
  const state = revision === 1 ? p.u8(150) : p.u16(150);
  const status = revision === 1 ? p.u8(151) : p.u16(152);
  const has = (bit: number) => (flags & bit) !== 0;
  const inverted = (bit: number) => (inv & bit) !== 0;
  const address = (bit: number, offset: number): Negatable<string> | null =>
    has(bit) ? { value: conntrackAddress(p, offset, family), invert: inverted(bit) } : null;
  // Revision 3 keeps ports in host order with an upper bound; 1 and 2 hold one port in network order.
  const port = (bit: number, offset: number, highOffset: number): Negatable<PortRange> | null => {
    if (!has(bit)) return null;
    const from = revision === 3 ? p.u16(offset) : p.be16(offset);
    const high = revision === 3 ? p.u16(highOffset) : 0;
    return { value: { from, to: high === 0 ? from : high }, invert: inverted(bit) };
  };
  return {
    state: has(CT.STATE) ? { value: CT_STATES.filter(([bit]) => state & bit).map(([, n]) => n), invert: inverted(CT.STATE) } : null,
    stateAlias: has(CT.STATE_ALIAS),
    protocol: has(CT.PROTO) ? { value: p.u16(136), invert: inverted(CT.PROTO) } : null,
    originalSource: address(CT.ORIGSRC, 0),
    originalDestination: address(CT.ORIGDST, 32),
    replySource: address(CT.REPLSRC, 64),
    replyDestination: address(CT.REPLDST, 96),
    originalSourcePort: port(CT.ORIGSRC_PORT, 138, 154),
    originalDestinationPort: port(CT.ORIGDST_PORT, 140, 156),
    replySourcePort: port(CT.REPLSRC_PORT, 142, 158),
    replyDestinationPort: port(CT.REPLDST_PORT, 144, 160),
    status: has(CT.STATUS) ? { value: CT_STATUS.filter(([bit]) => status & bit).map(([, n]) => n), invert: inverted(CT.STATUS) } : null,
    expires: has(CT.EXPIRES) ? { value: { min: p.u32(128), max: p.u32(132) }, invert: inverted(CT.EXPIRES) } : null,
    direction: has(CT.DIRECTION) ? (inverted(CT.DIRECTION) ? 'REPLY' : 'ORIGINAL') : null,
  };
}

function saveConntrack(o: ConntrackOptions): string {
  let s = '';
  if (o.state) s += `${not(o.state.invert)} --${o.stateAlias ? 'state' : 'ctstate'} ${o.state.value.join(',')}`;
  if (o.protocol) s += `${not(o.protocol.invert)} --ctproto ${o.protocol.value}`;
  const address = (option: string, a: Negatable<string> | null) => (a ? `${not(a.invert)} --${option} ${a.value}` : '');
  s += address('ctorigsrc', o.originalSource);
  s += address('ctorigdst', o.originalDestination);
  s += address('ctreplsrc', o.replySource);
  s += address('ctrepldst', o.replyDestination);
  const port = (option: string, r: Negatable<PortRange> | null) => (r ? `${not(r.invert)} --${option} ${portRange(r.value.from, r.value.to)}` : '');
  s += port('ctorigsrcport', o.originalSourcePort);
  s += port('ctorigdstport', o.originalDestinationPort);
  s += port('ctreplsrcport', o.replySourcePort);
  s += port('ctrepldstport', o.replyDestinationPort);
  if (o.status) s += `${not(o.status.invert)} --ctstatus ${o.status.value.length ? o.status.value.join(',') : 'NONE'}`;
  if (o.expires) s += `${not(o.expires.invert)} --ctexpire ${portRange(o.expires.value.min, o.expires.value.max)}`;
  if (o.direction) s += ` --ctdir ${o.direction}`;
  return s;
}

function bitsOf(names: string[], table: ReadonlyArray<readonly [number, string]>, what: string): number {
  return names.reduce((bits, name) => {
    const entry = table.find(([, n]) => n === name);
    if (!entry) throw new RangeError(`unknown ${what} ${JSON.stringify(name)} (one of ${table.map(([, n]) => n).join(', ')})`);
    return bits | entry[0];
  }, 0);
}

// struct xt_conntrack_mtinfo3, as iptables 1.8.9 fills it (also for -m state, with STATE_ALIAS).
function encodeConntrack(o: ConntrackOptions, w: StructWriter, family: IpFamily): void {
  let flags = 0;
  let inv = 0;
  const mark = (bit: number, n: { invert: boolean } | null) => {
    if (!n) return;
    flags |= bit;
    if (n.invert) inv |= bit;
  };
  const address = (bit: number, offset: number, a: Negatable<string> | null) => {
    mark(bit, a);
    if (!a) return;
    const { address, mask } = cidrBytes(a.value, family);
    w.put(offset, address).put(offset + 16, mask);
  };
  const port = (bit: number, offset: number, highOffset: number, r: Negatable<PortRange> | null) => {
    mark(bit, r);
    if (!r) return;
    w.u16(offset, r.value.from).u16(highOffset, r.value.to);
  };
  mark(CT.STATE, o.state);
  if (o.state) {
    w.u16(150, bitsOf(o.state.value, CT_STATES, 'conntrack state'));
    if (o.stateAlias) flags |= CT.STATE_ALIAS;
  }
  mark(CT.PROTO, o.protocol);
  if (o.protocol) w.u16(136, o.protocol.value);
  address(CT.ORIGSRC, 0, o.originalSource);
  address(CT.ORIGDST, 32, o.originalDestination);
  address(CT.REPLSRC, 64, o.replySource);
  address(CT.REPLDST, 96, o.replyDestination);
  port(CT.ORIGSRC_PORT, 138, 154, o.originalSourcePort);
  port(CT.ORIGDST_PORT, 140, 156, o.originalDestinationPort);
  port(CT.REPLSRC_PORT, 142, 158, o.replySourcePort);
  port(CT.REPLDST_PORT, 144, 160, o.replyDestinationPort);
  mark(CT.STATUS, o.status);
  if (o.status) w.u16(152, bitsOf(o.status.value, CT_STATUS, 'conntrack status'));
  mark(CT.EXPIRES, o.expires);
  if (o.expires) w.u32(128, o.expires.value.min).u32(132, o.expires.value.max);
  if (o.direction) {
    flags |= CT.DIRECTION;
    if (o.direction === 'REPLY') inv |= CT.DIRECTION;
  }
  w.u16(146, flags).u16(148, inv);
}

function cidrBytes(text: string, family: IpFamily): { address: Uint8Array; mask: Uint8Array } {
  const size = family === 'ipv4' ? 4 : 16;
  const b = new Uint8Array(2 * size);
  putCidr(text, family, b, 0, b, size);
  return { address: b.subarray(0, size), mask: b.subarray(size) };
}

for (const revision of [1, 2, 3] as const) {
  registerCodec({
    kind: 'match',
    name: 'conntrack',
    revision,
    decode: (p, family) => decodeConntrack(p, family, revision),
    save: saveConntrack,
    alias: (o) => (o.stateAlias ? 'state' : 'conntrack'),
    ...(revision === 3 ? { size: 164, encodeInto: encodeConntrack } : {}),
  } satisfies ExtensionCodec<ConntrackOptions>);
}

// The old kernel state match (revision 0); iptables 1.8 writes conntrack instead but reads both.
export interface StateOptions {
  states: string[];
}

const STATE_BITS: ReadonlyArray<readonly [number, string]> = [
  [0x1, 'INVALID'],
  [0x8, 'NEW'],
  [0x4, 'RELATED'],
  [0x2, 'ESTABLISHED'],
  [0x10, 'UNTRACKED'],
];

registerCodec({
  kind: 'match',
  name: 'state',
  revision: 0,
  decode: (p) => ({ states: STATE_BITS.filter(([bit]) => p.u32(0) & bit).map(([, n]) => n) }),
  save: (o) => ` --state ${o.states.join(',')}`,
} satisfies ExtensionCodec<StateOptions>);

// ---- mark --------------------------------------------------------------------------------------

export interface MarkMatchOptions {
  mark: number;
  mask: number;
  invert: boolean;
}

registerCodec({
  kind: 'match',
  name: 'mark',
  revision: 1,
  decode: (p) => ({ mark: p.u32(0), mask: p.u32(4), invert: p.u8(8) !== 0 }),
  save: (o) => `${not(o.invert)} --mark ${hex(o.mark)}${o.mask === 0xffffffff ? '' : '/' + hex(o.mask)}`,
  size: 12,
  encodeInto: (o, w) => void w.u32(0, o.mark).u32(4, o.mask).u8(8, o.invert ? 1 : 0),
} satisfies ExtensionCodec<MarkMatchOptions>);

// ---- multiport ---------------------------------------------------------------------------------

export interface MultiportOptions {
  direction: 'source' | 'destination' | 'either';
  ports: PortRange[];
  invert: boolean;
}

const MULTIPORT_OPTION = { source: '--sports', destination: '--dports', either: '--ports' } as const;

function multiportDirection(flags: number): MultiportOptions['direction'] {
  return flags === 0 ? 'source' : flags === 1 ? 'destination' : 'either';
}

function saveMultiport(o: MultiportOptions): string {
  return `${not(o.invert)} ${MULTIPORT_OPTION[o.direction]} ${o.ports.map((r) => portRange(r.from, r.to)).join(',')}`;
}

registerCodec({
  kind: 'match',
  name: 'multiport',
  revision: 1,
  decode(p) {
    const count = Math.min(p.u8(1), 15);
    const ports: PortRange[] = [];
    for (let i = 0; i < count; i++) {
      const from = p.u16(2 + 2 * i);
      if (p.u8(32 + i) && i + 1 < count) {
        i++;
        ports.push({ from, to: p.u16(2 + 2 * i) });
      } else {
        ports.push({ from, to: from });
      }
    }
    return { direction: multiportDirection(p.u8(0)), ports, invert: p.u8(47) !== 0 };
  },
  save: saveMultiport,
} satisfies ExtensionCodec<MultiportOptions>);

registerCodec({
  kind: 'match',
  name: 'multiport',
  revision: 0,
  decode(p) {
    const count = Math.min(p.u8(1), 15);
    const ports = Array.from({ length: count }, (_, i) => ({ from: p.u16(2 + 2 * i), to: p.u16(2 + 2 * i) }));
    return { direction: multiportDirection(p.u8(0)), ports, invert: false };
  },
  save: saveMultiport,
} satisfies ExtensionCodec<MultiportOptions>);

// ---- statistic ---------------------------------------------------------------------------------

export type StatisticOptions =
  /** probability is the kernel's u32 fraction of 2^31. */
  | { mode: 'random'; probability: number; invert: boolean }
  | { mode: 'nth'; every: number; packet: number; invert: boolean };

/** printf("%.11f", numerator / 2^31) with glibc's exact round-half-even. */
export function formatProbability(numerator: number): string {
  const scaled = BigInt(numerator) * 10n ** 11n;
  const denominator = 1n << 31n;
  let q = scaled / denominator;
  const r = scaled % denominator;
  if (r * 2n > denominator || (r * 2n === denominator && q % 2n === 1n)) q += 1n;
  const digits = q.toString().padStart(12, '0');
  return `${digits.slice(0, -11)}.${digits.slice(-11)}`;
}

registerCodec({
  kind: 'match',
  name: 'statistic',
  revision: 0,
  decode(p) {
    const invert = (p.u16(2) & 0x1) !== 0;
    return p.u16(0) === 0
      ? { mode: 'random', probability: p.u32(4), invert }
      : { mode: 'nth', every: p.u32(4) + 1, packet: p.u32(8), invert };
  },
  save(o) {
    if (o.mode === 'random') return ` --mode random${not(o.invert)} --probability ${formatProbability(o.probability)}`;
    return ` --mode nth${not(o.invert)} --every ${o.every} --packet ${o.packet}`;
  },
} satisfies ExtensionCodec<StatisticOptions>);

// ---- recent ------------------------------------------------------------------------------------

export interface RecentOptions {
  name: string;
  commands: Array<'set' | 'rcheck' | 'update' | 'remove'>;
  seconds: number;
  hitCount: number;
  reap: boolean;
  rttl: boolean;
  invert: boolean;
  side: 'source' | 'destination';
  /** Revision 1 only. */
  mask: string | null;
}

function decodeRecent(p: Payload, family: IpFamily, withMask: boolean): RecentOptions {
  const check = p.u8(8);
  const commands: RecentOptions['commands'] = [];
  if (check & 0x2) commands.push('set');
  if (check & 0x1) commands.push('rcheck');
  if (check & 0x4) commands.push('update');
  if (check & 0x8) commands.push('remove');
  return {
    name: p.cstring(10, 200),
    commands,
    seconds: p.u32(0),
    hitCount: p.u32(4),
    reap: (check & 0x20) !== 0,
    rttl: (check & 0x10) !== 0,
    invert: p.u8(9) !== 0,
    side: p.u8(210) === 1 ? 'destination' : 'source',
    mask: withMask ? p.inetAddress(212, family) : null,
  };
}

function saveRecent(o: RecentOptions): string {
  let s = not(o.invert);
  for (const c of o.commands) s += ` --${c}`;
  if (o.seconds) s += ` --seconds ${o.seconds}`;
  if (o.reap) s += ' --reap';
  if (o.hitCount) s += ` --hitcount ${o.hitCount}`;
  if (o.rttl) s += ' --rttl';
  s += ` --name ${o.name}`;
  if (o.mask !== null) s += ` --mask ${o.mask}`;
  s += o.side === 'source' ? ' --rsource' : ' --rdest';
  return s;
}

registerCodec({
  kind: 'match',
  name: 'recent',
  revision: 0,
  decode: (p, family) => decodeRecent(p, family, false),
  save: saveRecent,
} satisfies ExtensionCodec<RecentOptions>);

registerCodec({
  kind: 'match',
  name: 'recent',
  revision: 1,
  decode: (p, family) => decodeRecent(p, family, true),
  save: saveRecent,
} satisfies ExtensionCodec<RecentOptions>);

// ---- limit -------------------------------------------------------------------------------------

export interface LimitOptions {
  /** Average interval between packets in 1/10000 s (XT_LIMIT_SCALE). */
  average: number;
  burst: number;
}

const LIMIT_SCALE = 10000;
const RATES: ReadonlyArray<readonly [string, number]> = [
  ['day', LIMIT_SCALE * 24 * 60 * 60],
  ['hour', LIMIT_SCALE * 60 * 60],
  ['min', LIMIT_SCALE * 60],
  ['sec', LIMIT_SCALE],
];

// libxt_limit's print_rate: the coarsest unit that represents the period without much loss.
function saveRate(period: number): string {
  if (period === 0) return ' inf';
  let i = 1;
  for (; i < RATES.length; i++) {
    const mult = RATES[i]![1];
    if (period > mult || Math.floor(mult / period) < mult % period) break;
  }
  const [name, mult] = RATES[i - 1]!;
  return ` ${Math.floor(mult / period)}/${name}`;
}

registerCodec({
  kind: 'match',
  name: 'limit',
  revision: 0,
  decode: (p) => ({ average: p.u32(0), burst: p.u32(4) }),
  save: (o) => ' --limit' + saveRate(o.average) + (o.burst !== 5 ? ` --limit-burst ${o.burst}` : ''),
} satisfies ExtensionCodec<LimitOptions>);
