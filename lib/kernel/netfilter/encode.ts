// From a RuleSpec to the bytes the addon frames into an ipt_entry / ip6t_entry, exactly as
// iptables 1.8.9 fills them, so that a rule nodenet writes and the same rule written by iptables
// read back identical.
import { endianness } from 'node:os';

import { parseCidr } from './addresses.js';
import { findCodec, PREFERRED_REVISION } from './extension.js';
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

const HEADER = {
  ipv4: { size: 84, addr: 4, src: 0, dst: 4, smsk: 8, dmsk: 12, iniface: 16, outiface: 32, inmask: 48, outmask: 64, proto: 80, flags: 82, invflags: 83, gotoFlag: 0x2, fragFlag: 0x1, protoFlag: 0 },
  ipv6: { size: 136, addr: 16, src: 0, dst: 16, smsk: 32, dmsk: 48, iniface: 64, outiface: 80, inmask: 96, outmask: 112, proto: 128, flags: 131, invflags: 132, gotoFlag: 0x4, fragFlag: 0, protoFlag: 0x1 },
} as const;

const INV = { VIA_IN: 0x1, VIA_OUT: 0x2, SRCIP: 0x8, DSTIP: 0x10, FRAG: 0x20, PROTO: 0x40 } as const;

// xtables_parse_interface: the name (a trailing + kept), a mask over the name and its NUL, or over
// the name without the + for a wildcard.
function writeInterface(buf: Buffer, nameOffset: number, maskOffset: number, iface: string): void {
  const bytes = Buffer.from(iface, 'latin1');
  if (bytes.length + 1 > IFNAMSIZ) throw new RangeError(`interface name ${JSON.stringify(iface)} must be shorter than ${IFNAMSIZ} bytes`);
  if (bytes.length === 0) return;
  if (!/^[^\s/:]+$/.test(iface)) throw new RangeError(`interface name ${JSON.stringify(iface)} has characters no interface has`);
  bytes.copy(buf, nameOffset);
  const wildcard = iface.endsWith('+');
  buf.fill(0xff, maskOffset, maskOffset + (wildcard ? bytes.length - 1 : bytes.length + 1));
}

function writeAddress(buf: Buffer, family: IpFamily, addrOffset: number, maskOffset: number, value: Negatable<string> | null | undefined): boolean {
  if (!value) return false;
  const { address, mask } = parseCidr(value.value, family);
  Buffer.from(address).copy(buf, addrOffset);
  Buffer.from(mask).copy(buf, maskOffset);
  return value.invert;
}

function encodeHeader(rule: RuleSpec, family: IpFamily): Buffer {
  const l = HEADER[family];
  const buf = Buffer.alloc(l.size);
  let inv = 0;
  let flags = 0;
  if (writeAddress(buf, family, l.src, l.smsk, rule.source)) inv |= INV.SRCIP;
  if (writeAddress(buf, family, l.dst, l.dmsk, rule.destination)) inv |= INV.DSTIP;
  if (rule.inInterface) {
    writeInterface(buf, l.iniface, l.inmask, rule.inInterface.value);
    if (rule.inInterface.invert) inv |= INV.VIA_IN;
  }
  if (rule.outInterface) {
    writeInterface(buf, l.outiface, l.outmask, rule.outInterface.value);
    if (rule.outInterface.invert) inv |= INV.VIA_OUT;
  }
  if (rule.protocol) {
    const number = rule.protocol.number ?? protocolNumber(rule.protocol.name ?? 'all');
    if (endianness() === 'LE') buf.writeUInt16LE(number, l.proto);
    else buf.writeUInt16BE(number, l.proto);
    if (family === 'ipv6') flags |= l.protoFlag;
    if (rule.protocol.invert) inv |= INV.PROTO;
  }
  if (rule.fragment) {
    if (family !== 'ipv4') throw new RangeError('-f (fragments) exists only for IPv4');
    flags |= l.fragFlag;
    if (rule.fragment.invert) inv |= INV.FRAG;
  }
  if (rule.target.kind === 'jump' && rule.target.goto) flags |= l.gotoFlag;
  buf.writeUInt8(flags, l.flags);
  buf.writeUInt8(inv, l.invflags);
  return buf;
}

function encodeExtension(kind: 'match' | 'target', ext: ExtensionSpec, family: IpFamily): EncodedExtension {
  const revision = ext.revision ?? PREFERRED_REVISION[`${kind}/${ext.name}`];
  if (ext.options !== undefined && ext.options !== null) {
    if (revision === undefined) throw new RangeError(`${kind} ${ext.name}: nodenet cannot encode it; give its revision and raw payload`);
    const codec = findCodec(kind, ext.name, revision, family);
    if (!codec?.encode) throw new RangeError(`${kind} ${ext.name} revision ${revision}: nodenet cannot encode it; give its raw payload`);
    return { name: ext.name, revision, data: codec.encode(ext.options, family) };
  }
  if (!ext.raw || revision === undefined) throw new RangeError(`${kind} ${ext.name}: give either options or revision and raw payload`);
  return { name: ext.name, revision, data: ext.raw };
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
