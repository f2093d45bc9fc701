// Target extensions nodenet decodes (the standard verdict/jump target is handled by the rule decoder).
import { hex, registerCodec, saveString, StructWriter, type ExtensionCodec } from './extension.js';
import type { Payload } from './payload.js';
import type { IpFamily } from './types.js';

// ---- NAT: DNAT, SNAT, MASQUERADE, REDIRECT -----------------------------------------------------

const NAT = {
  MAP_IPS: 0x1,
  PROTO_SPECIFIED: 0x2,
  RANDOM: 0x4,
  PERSISTENT: 0x8,
  RANDOM_FULLY: 0x10,
  OFFSET: 0x20,
} as const;

export interface NatOptions {
  /** Address range; null when the target keeps the address (ports only). */
  addresses: { from: string; to: string } | null;
  /** Port range; null when ports are kept. */
  ports: { from: number; to: number; base: number | null } | null;
  random: boolean;
  randomFully: boolean;
  persistent: boolean;
}

function natFromFlags(flags: number, addresses: NatOptions['addresses'], ports: NatOptions['ports']): NatOptions {
  return {
    addresses: flags & NAT.MAP_IPS ? addresses : null,
    ports: flags & NAT.PROTO_SPECIFIED ? ports : null,
    random: (flags & NAT.RANDOM) !== 0,
    randomFully: (flags & NAT.RANDOM_FULLY) !== 0,
    persistent: (flags & NAT.PERSISTENT) !== 0,
  };
}

// struct nf_nat_range (revision 1) and nf_nat_range2 (revision 2, adds base_proto for port offsets).
function decodeNatRange(p: Payload, family: IpFamily, withBase: boolean): NatOptions {
  const flags = p.u32(0);
  return natFromFlags(
    flags,
    { from: p.inetAddress(4, family), to: p.inetAddress(20, family) },
    { from: p.be16(36), to: p.be16(38), base: withBase && flags & NAT.OFFSET ? p.be16(40) : null },
  );
}

// struct nf_nat_ipv4_multi_range_compat with one range (the IPv4 revision 0 layout).
function decodeNatIPv4Compat(p: Payload): NatOptions {
  const flags = p.u32(4);
  return natFromFlags(flags, { from: p.ipv4(8), to: p.ipv4(12) }, { from: p.be16(16), to: p.be16(18), base: null });
}

function saveNatRange(o: NatOptions, family: IpFamily): string {
  let s = '';
  const brackets = family === 'ipv6' && o.ports !== null;
  if (o.addresses) {
    s += brackets ? '[' : '';
    s += o.addresses.from;
    if (o.addresses.to !== o.addresses.from) s += '-' + o.addresses.to;
    s += brackets ? ']' : '';
  }
  if (o.ports) {
    s += ':' + o.ports.from;
    if (o.ports.to !== o.ports.from) s += '-' + o.ports.to;
    if (o.ports.base !== null) s += '/' + o.ports.base;
  }
  return s;
}

function savePortsOnly(o: NatOptions): string {
  if (!o.ports) return '';
  return ` --to-ports ${o.ports.from}${o.ports.to !== o.ports.from ? '-' + o.ports.to : ''}`;
}

function saveNatFlags(o: NatOptions): string {
  return (o.random ? ' --random' : '') + (o.randomFully ? ' --random-fully' : '') + (o.persistent ? ' --persistent' : '');
}

// struct nf_nat_range2, as iptables 1.8.9 writes DNAT.
function encodeNatRange2(o: NatOptions, w: StructWriter, family: IpFamily): void {
  let flags = 0;
  if (o.addresses) {
    if (!w.address(4, o.addresses.from, family) || !w.address(20, o.addresses.to, family)) {
      throw new RangeError(`NAT address range ${o.addresses.from}-${o.addresses.to} is not ${family}`);
    }
    flags |= NAT.MAP_IPS;
  }
  if (o.ports) {
    const { from, to } = o.ports;
    if (!Number.isInteger(from) || from < 1 || from > 0xffff) throw new RangeError(`NAT port ${from} is not 1-65535`);
    if (!Number.isInteger(to) || to < 1 || to > 0xffff) throw new RangeError(`NAT port ${to} is not 1-65535`);
    w.be16(36, o.ports.from).be16(38, o.ports.to);
    flags |= NAT.PROTO_SPECIFIED;
    if (o.ports.base !== null) {
      w.be16(40, o.ports.base);
      flags |= NAT.OFFSET;
    }
  }
  if (o.random) flags |= NAT.RANDOM;
  if (o.randomFully) flags |= NAT.RANDOM_FULLY;
  if (o.persistent) flags |= NAT.PERSISTENT;
  w.u32(0, flags);
}

for (const [name, option] of [['DNAT', '--to-destination'], ['SNAT', '--to-source']] as const) {
  const save = (o: NatOptions, family: IpFamily) => ` ${option} ${saveNatRange(o, family)}${saveNatFlags(o)}`;
  registerCodec({ kind: 'target', name, revision: 0, family: 'ipv4', decode: decodeNatIPv4Compat, save } satisfies ExtensionCodec<NatOptions>);
  registerCodec({ kind: 'target', name, revision: 1, decode: (p, f) => decodeNatRange(p, f, false), save } satisfies ExtensionCodec<NatOptions>);
  registerCodec({
    kind: 'target',
    name,
    revision: 2,
    decode: (p, f) => decodeNatRange(p, f, true),
    save,
    ...(name === 'DNAT' ? { size: 44, encodeInto: encodeNatRange2 } : {}),
  } satisfies ExtensionCodec<NatOptions>);
}

for (const name of ['MASQUERADE', 'REDIRECT'] as const) {
  const save = (o: NatOptions) => savePortsOnly(o) + saveNatFlags(o);
  registerCodec({ kind: 'target', name, revision: 0, family: 'ipv4', decode: decodeNatIPv4Compat, save } satisfies ExtensionCodec<NatOptions>);
  registerCodec({ kind: 'target', name, revision: 0, family: 'ipv6', decode: (p, f) => decodeNatRange(p, f, false), save } satisfies ExtensionCodec<NatOptions>);
}

// ---- MARK --------------------------------------------------------------------------------------

export interface MarkTargetOptions {
  /** The packet mark becomes (mark & ~mask) ^ value: --set-xmark value/mask. */
  value: number;
  mask: number;
}

registerCodec({
  kind: 'target',
  name: 'MARK',
  revision: 2,
  decode: (p) => ({ value: p.u32(0), mask: p.u32(4) }),
  save: (o) => ` --set-xmark ${hex(o.value)}/${hex(o.mask)}`,
  size: 8,
  encodeInto: (o, w) => void w.u32(0, o.value).u32(4, o.mask),
} satisfies ExtensionCodec<MarkTargetOptions>);

// ---- CT and NOTRACK ----------------------------------------------------------------------------

const CT_FLAGS = { NOTRACK: 0x1, NOTRACK_ALIAS: 0x2, ZONE_DIR_ORIG: 0x4, ZONE_DIR_REPL: 0x8, ZONE_MARK: 0x10 } as const;
const CT_EVENTS = ['new', 'related', 'destroy', 'reply', 'assured', 'protoinfo', 'helper', 'mark', 'natseqinfo', 'secmark'];
const EXP_EVENTS = ['new'];

export interface CtOptions {
  notrack: boolean;
  /** Written as `-j NOTRACK` (iptables turns that into CT --notrack with this flag). */
  notrackAlias: boolean;
  helper: string;
  /** Revision 1 and later. */
  timeout: string;
  ctEvents: string[];
  expectationEvents: string[];
  zone: number;
  zoneFromMark: boolean;
  zoneDirection: 'both' | 'original' | 'reply';
}

function decodeCt(p: Payload, withTimeout: boolean): CtOptions {
  const flags = p.u16(0);
  const events = (mask: number, names: string[]) => names.filter((_, i) => mask & (1 << i));
  const orig = (flags & CT_FLAGS.ZONE_DIR_ORIG) !== 0;
  const repl = (flags & CT_FLAGS.ZONE_DIR_REPL) !== 0;
  return {
    notrack: (flags & CT_FLAGS.NOTRACK) !== 0,
    notrackAlias: (flags & CT_FLAGS.NOTRACK_ALIAS) !== 0,
    helper: p.cstring(12, 16),
    timeout: withTimeout ? p.cstring(28, 32) : '',
    ctEvents: events(p.u32(4), CT_EVENTS),
    expectationEvents: events(p.u32(8), EXP_EVENTS),
    zone: p.u16(2),
    zoneFromMark: (flags & CT_FLAGS.ZONE_MARK) !== 0,
    zoneDirection: orig && !repl ? 'original' : repl && !orig ? 'reply' : 'both',
  };
}

function saveCt(o: CtOptions): string {
  if (o.notrackAlias) return '';
  if (o.notrack) return ' --notrack';
  let s = '';
  if (o.helper) s += ` --helper ${o.helper}`;
  if (o.timeout) s += ` --timeout ${o.timeout}`;
  if (o.ctEvents.length) s += ` --ctevents ${o.ctEvents.join(',')}`;
  if (o.expectationEvents.length) s += ` --expevents ${o.expectationEvents.join(',')}`;
  const dir = o.zoneDirection === 'original' ? '-orig' : o.zoneDirection === 'reply' ? '-reply' : '';
  if (o.zoneFromMark) s += ` --zone${dir} mark`;
  else if (o.zone) s += ` --zone${dir} ${o.zone}`;
  return s;
}

const ctAlias = (o: CtOptions) => (o.notrackAlias ? 'NOTRACK' : 'CT');

// struct xt_ct_target_info_v1 (revisions 1 and 2); the kernel's conntrack pointer at the end stays zero.
function encodeCt(o: CtOptions, w: StructWriter): void {
  const events = (names: string[], table: string[], what: string) =>
    names.reduce((bits, n) => {
      const i = table.indexOf(n);
      if (i < 0) throw new RangeError(`unknown ${what} ${JSON.stringify(n)}`);
      return bits | (1 << i);
    }, 0);
  let flags = (o.notrack ? CT_FLAGS.NOTRACK : 0) | (o.notrackAlias ? CT_FLAGS.NOTRACK_ALIAS : 0) | (o.zoneFromMark ? CT_FLAGS.ZONE_MARK : 0);
  if (o.zoneDirection === 'original') flags |= CT_FLAGS.ZONE_DIR_ORIG;
  if (o.zoneDirection === 'reply') flags |= CT_FLAGS.ZONE_DIR_REPL;
  w.u16(0, flags)
    .u16(2, o.zone)
    .u32(4, events(o.ctEvents, CT_EVENTS, 'conntrack event'))
    .u32(8, events(o.expectationEvents, EXP_EVENTS, 'expectation event'))
    .cstring(12, 16, o.helper, 'CT helper')
    .cstring(28, 32, o.timeout, 'CT timeout policy');
}
registerCodec({ kind: 'target', name: 'CT', revision: 0, decode: (p) => decodeCt(p, false), save: saveCt, alias: ctAlias } satisfies ExtensionCodec<CtOptions>);
registerCodec({ kind: 'target', name: 'CT', revision: 1, decode: (p) => decodeCt(p, true), save: saveCt, alias: ctAlias } satisfies ExtensionCodec<CtOptions>);
registerCodec({ kind: 'target', name: 'CT', revision: 2, decode: (p) => decodeCt(p, true), save: saveCt, alias: ctAlias, size: 72, encodeInto: encodeCt } satisfies ExtensionCodec<CtOptions>);

// The original NOTRACK target (no payload), from older iptables.
registerCodec({ kind: 'target', name: 'NOTRACK', revision: 0, decode: () => ({}), save: () => '' } satisfies ExtensionCodec<Record<string, never>>);

// ---- REJECT ------------------------------------------------------------------------------------

const REJECT_IPV4 = [
  'icmp-net-unreachable',
  'icmp-host-unreachable',
  'icmp-proto-unreachable',
  'icmp-port-unreachable',
  'echo-reply',
  'icmp-net-prohibited',
  'icmp-host-prohibited',
  'tcp-reset',
  'icmp-admin-prohibited',
];
const REJECT_IPV6 = [
  'icmp6-no-route',
  'icmp6-adm-prohibited',
  'icmp6-not-neighbor',
  'icmp6-addr-unreachable',
  'icmp6-port-unreachable',
  'echo-reply',
  'tcp-reset',
  'icmp6-policy-fail',
  'icmp6-reject-route',
];

export interface RejectOptions {
  /** The `--reject-with` name, or the kernel's number when iptables has no name for it. */
  with: string;
}

for (const [family, names] of [['ipv4', REJECT_IPV4], ['ipv6', REJECT_IPV6]] as const) {
  registerCodec({
    kind: 'target',
    name: 'REJECT',
    revision: 0,
    family,
    decode: (p) => ({ with: names[p.u32(0)] ?? String(p.u32(0)) }),
    save: (o) => ` --reject-with ${o.with}`,
  } satisfies ExtensionCodec<RejectOptions>);
}

// ---- LOG ---------------------------------------------------------------------------------------

export interface LogOptions {
  prefix: string;
  /** syslog level; 4 (warning) is the default iptables leaves out. */
  level: number;
  tcpSequence: boolean;
  tcpOptions: boolean;
  ipOptions: boolean;
  uid: boolean;
  macDecode: boolean;
}

registerCodec({
  kind: 'target',
  name: 'LOG',
  revision: 0,
  decode(p) {
    const flags = p.u8(1);
    return {
      level: p.u8(0),
      prefix: p.cstring(2, 30),
      tcpSequence: (flags & 0x1) !== 0,
      tcpOptions: (flags & 0x2) !== 0,
      ipOptions: (flags & 0x4) !== 0,
      uid: (flags & 0x8) !== 0,
      macDecode: (flags & 0x20) !== 0,
    };
  },
  save(o) {
    let s = '';
    if (o.prefix) s += ' --log-prefix' + saveString(o.prefix);
    if (o.level !== 4) s += ` --log-level ${o.level}`;
    if (o.tcpSequence) s += ' --log-tcp-sequence';
    if (o.tcpOptions) s += ' --log-tcp-options';
    if (o.ipOptions) s += ' --log-ip-options';
    if (o.uid) s += ' --log-uid';
    if (o.macDecode) s += ' --log-macdecode';
    return s;
  },
} satisfies ExtensionCodec<LogOptions>);

// ---- targets without options -------------------------------------------------------------------

for (const name of ['TRACE'] as const) {
  registerCodec({ kind: 'target', name, revision: 0, decode: () => ({}), save: () => '' } satisfies ExtensionCodec<Record<string, never>>);
}
