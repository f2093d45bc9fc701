// From a RuleSpec to the bytes the addon frames into an ipt_entry / ip6t_entry, exactly as
// iptables 1.8.9 fills them, so that a rule nodenet writes and the same rule written by iptables
// read back identical.
import { endianness } from 'node:os';

import { putCidr } from './addresses.js';
import { findCodec, preferredRevision, StructWriter, type AnyCodec } from './extension.js';
import { isDeepFrozen } from './frozen.js';
import './matches.js';
import './targets.js';
import { protocolNumber } from './protocols.js';
import type { ExtensionSpec, RuleSpec } from './spec.js';
import type { IpFamily, Negatable } from './types.js';

export interface EncodedExtension {
  name: string;
  revision: number;
  data: Buffer;
}

export interface EncodedRule {
  ip: Buffer;
  matches: EncodedExtension[];
  target: { standard: boolean; name: string; revision: number; data: Buffer };
}

const IFNAMSIZ = 16;
const HOST_LITTLE_ENDIAN = endianness() === 'LE';

interface HeaderLayout {
  size: number;
  addr: number;
  src: number;
  dst: number;
  smsk: number;
  dmsk: number;
  iniface: number;
  outiface: number;
  inmask: number;
  outmask: number;
  proto: number;
  flags: number;
  invflags: number;
  gotoFlag: number;
  fragFlag: number;
  protoFlag: number;
}

const HEADER: Readonly<Record<IpFamily, HeaderLayout>> = {
  ipv4: { size: 84, addr: 4, src: 0, dst: 4, smsk: 8, dmsk: 12, iniface: 16, outiface: 32, inmask: 48, outmask: 64, proto: 80, flags: 82, invflags: 83, gotoFlag: 0x2, fragFlag: 0x1, protoFlag: 0 },
  ipv6: { size: 136, addr: 16, src: 0, dst: 16, smsk: 32, dmsk: 48, iniface: 64, outiface: 80, inmask: 96, outmask: 112, proto: 128, flags: 131, invflags: 132, gotoFlag: 0x4, fragFlag: 0, protoFlag: 0x1 },
};

const INV = { VIA_IN: 0x1, VIA_OUT: 0x2, SRCIP: 0x8, DSTIP: 0x10, FRAG: 0x20, PROTO: 0x40 } as const;

// xtables_parse_interface: the name (a trailing + kept), a mask over the name and its NUL, or over
// the name without the + for a wildcard.
function writeInterface(buf: Buffer, nameOffset: number, maskOffset: number, iface: string): void {
  const length = iface.length; // latin1: one byte per character
  if (length + 1 > IFNAMSIZ) throw new RangeError(`interface name ${JSON.stringify(iface)} must be shorter than ${IFNAMSIZ} bytes`);
  if (length === 0) return;
  if (!/^[^\s/:]+$/.test(iface)) throw new RangeError(`interface name ${JSON.stringify(iface)} has characters no interface has`);
  for (let i = 0; i < length; i++) buf[nameOffset + i] = iface.charCodeAt(i) & 0xff;
  const wildcard = iface.charCodeAt(length - 1) === 43; // '+'
  buf.fill(0xff, maskOffset, maskOffset + (wildcard ? length - 1 : length + 1));
}

function writeAddress(buf: Buffer, family: IpFamily, addrOffset: number, maskOffset: number, value: Negatable<string> | null | undefined): boolean {
  if (!value) return false;
  putCidr(value.value, family, buf, addrOffset, buf, maskOffset);
  return value.invert;
}

/** The rule's ipt_entry / ip6t_entry header into buf[base, base + HEADER[family].size), which is zeroed. */
function writeHeader(buf: Buffer, base: number, rule: RuleSpec, family: IpFamily): void {
  const l = HEADER[family];
  let inv = 0;
  let flags = 0;
  if (writeAddress(buf, family, base + l.src, base + l.smsk, rule.source)) inv |= INV.SRCIP;
  if (writeAddress(buf, family, base + l.dst, base + l.dmsk, rule.destination)) inv |= INV.DSTIP;
  if (rule.inInterface) {
    writeInterface(buf, base + l.iniface, base + l.inmask, rule.inInterface.value);
    if (rule.inInterface.invert) inv |= INV.VIA_IN;
  }
  if (rule.outInterface) {
    writeInterface(buf, base + l.outiface, base + l.outmask, rule.outInterface.value);
    if (rule.outInterface.invert) inv |= INV.VIA_OUT;
  }
  if (rule.protocol) {
    const number = rule.protocol.number ?? protocolNumber(rule.protocol.name ?? 'all');
    if (HOST_LITTLE_ENDIAN) buf.writeUInt16LE(number, base + l.proto);
    else buf.writeUInt16BE(number, base + l.proto);
    if (family === 'ipv6') flags |= l.protoFlag;
    if (rule.protocol.invert) inv |= INV.PROTO;
  }
  if (rule.fragment) {
    if (family !== 'ipv4') throw new RangeError('-f (fragments) exists only for IPv4');
    flags |= l.fragFlag;
    if (rule.fragment.invert) inv |= INV.FRAG;
  }
  if (rule.target.kind === 'jump' && rule.target.goto) flags |= l.gotoFlag;
  buf.writeUInt8(flags, base + l.flags);
  buf.writeUInt8(inv, base + l.invflags);
}

function encodeHeader(rule: RuleSpec, family: IpFamily): Buffer {
  const buf = Buffer.alloc(HEADER[family].size);
  writeHeader(buf, 0, rule, family);
  return buf;
}

/** The revision and, for options, the codec encoding them; throws what iptables would refuse. */
function resolve(kind: 'match' | 'target', ext: ExtensionSpec, family: IpFamily): { revision: number; codec: AnyCodec | null } {
  const revision = ext.revision ?? preferredRevision(kind, ext.name);
  if (ext.options !== undefined && ext.options !== null) {
    if (revision === undefined) throw new RangeError(`${kind} ${ext.name}: nodenet cannot encode it; give its revision and raw payload`);
    const codec = findCodec(kind, ext.name, revision, family);
    if (!codec?.encode) throw new RangeError(`${kind} ${ext.name} revision ${revision}: nodenet cannot encode it; give its raw payload`);
    return { revision, codec };
  }
  if (!ext.raw || revision === undefined) throw new RangeError(`${kind} ${ext.name}: give either options or revision and raw payload`);
  return { revision, codec: null };
}

function encodeExtension(kind: 'match' | 'target', ext: ExtensionSpec, family: IpFamily): EncodedExtension {
  const { revision, codec } = resolve(kind, ext, family);
  return { name: ext.name, revision, data: codec ? codec.encode!(ext.options, family) : ext.raw! };
}

/** The addon's input for one rule. Throws RangeError for anything iptables itself would refuse. */
export function encodeRule(rule: RuleSpec, family: IpFamily): EncodedRule {
  const ip = encodeHeader(rule, family);
  const matches = (rule.matches ?? []).map((m) => encodeExtension('match', m, family));
  const t = rule.target;
  switch (t.kind) {
    case 'verdict':
      return { ip, matches, target: { standard: true, name: t.verdict, revision: 0, data: Buffer.alloc(0) } };
    case 'jump':
      return { ip, matches, target: { standard: true, name: t.chain, revision: 0, data: Buffer.alloc(0) } };
    case 'none':
      return { ip, matches, target: { standard: true, name: '', revision: 0, data: Buffer.alloc(0) } };
    case 'extension': {
      const e = encodeExtension('target', t, family);
      return { ip, matches, target: { standard: false, ...e } };
    }
  }
}

/**
 * Rules straight into the addon's wire form (RawApplySpec: one Buffer for a whole chain), with no
 * per-rule objects in between. Per rule: u16le header length, header, u8 match count, then per
 * match u8 name length, name, u8 revision, u32le payload length, payload; then the target: u8
 * standard (0/1), u8 name length, name, u8 revision, u32le payload length, payload. The bytes are
 * those of encodeRule's, framed.
 */
export class RuleWireWriter {
  private buf: Buffer;
  private at = 0;
  private readonly family: IpFamily;
  private readonly names = new Map<string, Buffer>();
  private readonly w = new StructWriter(0);
  /** The first framing problem of the current rule (the rule itself encoded fine). */
  private problem: string | null = null;

  constructor(family: IpFamily, capacity = 4096) {
    this.family = family;
    this.buf = Buffer.alloc(capacity);
  }

  /** Starts a new Buffer, with room for about `rules` rules. */
  begin(rules: number): void {
    const capacity = 64 + rules * 448;
    if (this.at !== 0 || this.buf.length < capacity) this.buf = Buffer.alloc(capacity);
    this.at = 0;
  }

  /** The Buffer since begin. */
  finish(): Buffer {
    const out = this.buf.subarray(0, this.at);
    this.buf = Buffer.alloc(0);
    this.at = 0;
    return out;
  }

  // Room for n more bytes; what lies past `at` is always zero (a fresh Buffer.alloc).
  private ensure(n: number): void {
    const need = this.at + n;
    if (need <= this.buf.length) return;
    const grown = Buffer.alloc(Math.max(need, 2 * this.buf.length));
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }

  private nameBytes(name: string): Buffer {
    let b = this.names.get(name);
    if (!b) this.names.set(name, (b = Buffer.from(name, 'utf8')));
    return b;
  }

  private fail(why: string): void {
    if (this.problem === null) this.problem = why;
  }

  private extension(what: 'match' | 'target', name: string, revision: number, size: number): number {
    const n = this.nameBytes(name);
    if (n.length > 255) this.fail(`${what} name ${name} is too long`);
    if (!Number.isInteger(revision) || revision < 0 || revision > 255) this.fail(`${what} ${name}: revision must be 0-255, not ${revision}`);
    this.ensure(6 + n.length + size);
    const buf = this.buf;
    let at = this.at;
    buf[at++] = n.length;
    for (let i = 0; i < n.length; i++) buf[at++] = n[i]!;
    buf[at++] = revision;
    buf[at++] = size & 0xff;
    buf[at++] = (size >>> 8) & 0xff;
    buf[at++] = (size >>> 16) & 0xff;
    buf[at++] = size >>> 24;
    this.at = at + size;
    return at;
  }

  private encoded(kind: 'match' | 'target', ext: ExtensionSpec): void {
    let revision: number;
    let codec: AnyCodec | null;
    const known = ext.options !== undefined && ext.options !== null && ext.revision === undefined ? preferredRevision(kind, ext.name) : undefined;
    const fast = known === undefined ? undefined : findCodec(kind, ext.name, known, this.family);
    if (fast?.encode) {
      // The common case (options, the preferred revision), without resolve's result object.
      revision = known!;
      codec = fast;
    } else {
      ({ revision, codec } = resolve(kind, ext, this.family));
    }
    if (codec?.encodeInto && codec.size !== undefined) {
      const size = codec.size;
      const at = this.extension(kind, ext.name, revision, size);
      codec.encodeInto(ext.options, this.w.retarget(this.buf, at, size), this.family);
      return;
    }
    const data = codec ? codec.encode!(ext.options, this.family) : ext.raw!;
    const at = this.extension(kind, ext.name, revision, data.length);
    this.buf.set(data, at);
  }

  /**
   * Appends one rule. Throws RangeError for what iptables would refuse; returns what cannot be
   * framed (a name or revision out of range), or null.
   */
  rule(rule: RuleSpec): string | null {
    this.problem = null;
    const known = ENCODED[this.family].get(rule);
    if (known) {
      this.ensure(known.length);
      known.copy(this.buf, this.at);
      this.at += known.length;
      return null;
    }
    const size = HEADER[this.family].size;
    this.ensure(3 + size);
    const start = this.at;
    this.buf[start] = size & 0xff;
    this.buf[start + 1] = size >>> 8;
    writeHeader(this.buf, start + 2, rule, this.family);
    const matches = rule.matches ?? [];
    if (matches.length > 255) this.fail('more than 255 matches');
    this.buf[start + 2 + size] = matches.length & 0xff;
    this.at = start + 3 + size;
    for (let i = 0; i < matches.length; i++) this.encoded('match', matches[i]!);
    const t = rule.target;
    if (t.kind === 'extension') {
      // The target's own problems come after its encoding, as the framing checks run last.
      this.ensure(1);
      this.buf[this.at++] = 0;
      this.encoded('target', t);
    } else {
      this.ensure(1);
      this.buf[this.at++] = 1;
      this.extension('target', t.kind === 'verdict' ? t.verdict : t.kind === 'jump' ? t.chain : '', 0, 0);
    }
    if (this.problem === null && isDeepFrozen(rule)) ENCODED[this.family].set(rule, Buffer.from(this.buf.subarray(start, this.at)));
    return this.problem;
  }
}

// A deeply frozen rule's bytes, by identity (frozen.ts says why that is safe).
const ENCODED: Record<IpFamily, WeakMap<RuleSpec, Buffer>> = { ipv4: new WeakMap(), ipv6: new WeakMap() };
