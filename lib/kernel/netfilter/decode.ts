// From the addon's raw table (entry framing only) to the structured form.
import { formatIPv4, formatIPv6, prefixLength } from './addresses.js';
import { findCodec } from './extension.js';
import './matches.js';
import './targets.js';
import { Payload } from './payload.js';
import { protocolName } from './protocols.js';
import type { Chain, Extension, IpFamily, Negatable, Rule, Table, Target, Verdict } from './types.js';
import type { RawChain, RawExtension, RawRule, RawTable } from '../native.js';

const VERDICTS: ReadonlySet<string> = new Set(['ACCEPT', 'DROP', 'QUEUE', 'RETURN']);

// ipt_ip / ip6t_ip6 field offsets and flag bits (linux/netfilter_ipv{4,6}/ip{,6}_tables.h).
const LAYOUT = {
  ipv4: { size: 84, addr: 4, src: 0, dst: 4, smsk: 8, dmsk: 12, iniface: 16, outiface: 32, inmask: 48, outmask: 64, proto: 80, flags: 82, invflags: 83, gotoFlag: 0x2, fragFlag: 0x1 },
  ipv6: { size: 136, addr: 16, src: 0, dst: 16, smsk: 32, dmsk: 48, iniface: 64, outiface: 80, inmask: 96, outmask: 112, proto: 128, flags: 131, invflags: 132, gotoFlag: 0x4, fragFlag: 0 },
} as const;

const INV = { VIA_IN: 0x1, VIA_OUT: 0x2, SRCIP: 0x8, DSTIP: 0x10, FRAG: 0x20, PROTO: 0x40 } as const;

function decodeAddress(p: Payload, family: IpFamily, addrOffset: number, maskOffset: number, invert: boolean): Negatable<string> | null {
  const size = LAYOUT[family].addr;
  const addr = p.slice(addrOffset, size);
  const mask = p.slice(maskOffset, size);
  const bits = prefixLength(mask);
  if (family === 'ipv4') {
    // print_ip: nothing for 0.0.0.0/0 unless inverted.
    if (mask.every((b) => b === 0) && addr.every((b) => b === 0) && !invert) return null;
    return { value: `${formatIPv4(addr)}/${bits >= 0 ? bits : formatIPv4(mask)}`, invert };
  }
  if (bits === 0 && !invert) return null;
  return { value: `${formatIPv6(addr)}/${bits >= 0 ? bits : formatIPv6(mask)}`, invert };
}

// save_iface: the masked bytes of the name; a mask that ends before the name does means a `+` wildcard.
function decodeInterface(p: Payload, nameOffset: number, maskOffset: number, invert: boolean): Negatable<string> | null {
  const name = p.slice(nameOffset, 16);
  const mask = p.slice(maskOffset, 16);
  if (mask[0] === 0) return null;
  let value = '';
  for (let i = 0; i < 16; i++) {
    if (mask[i] !== 0) {
      if (name[i] !== 0) value += String.fromCharCode(name[i]!);
    } else {
      if (name[i - 1] !== 0) value += '+';
      break;
    }
  }
  return { value, invert };
}

function decodeExtension(kind: 'match' | 'target', raw: RawExtension, family: IpFamily): Extension {
  const codec = findCodec(kind, raw.name, raw.revision, family);
  let options: unknown = null;
  if (codec) {
    try {
      options = codec.decode(new Payload(raw.data), family);
    } catch {
      options = null; // a payload shorter than its struct: keep it raw rather than guess
    }
  }
  return { name: raw.name, revision: raw.revision, raw: raw.data, options };
}

function decodeTarget(raw: RawRule, family: IpFamily, gotoFlag: boolean): Target {
  if (raw.target.name !== '') return { kind: 'extension', ...decodeExtension('target', raw.target, family) };
  if (raw.verdict === '') return { kind: 'none' };
  if (VERDICTS.has(raw.verdict)) return { kind: 'verdict', verdict: raw.verdict as Verdict };
  return { kind: 'jump', chain: raw.verdict, goto: gotoFlag };
}

export function decodeRule(raw: RawRule, family: IpFamily): Rule {
  const l = LAYOUT[family];
  const p = new Payload(raw.ip);
  const inv = p.u8(l.invflags);
  const flags = p.u8(l.flags);
  const proto = p.u16(l.proto);
  return {
    source: decodeAddress(p, family, l.src, l.smsk, (inv & INV.SRCIP) !== 0),
    destination: decodeAddress(p, family, l.dst, l.dmsk, (inv & INV.DSTIP) !== 0),
    inInterface: decodeInterface(p, l.iniface, l.inmask, (inv & INV.VIA_IN) !== 0),
    outInterface: decodeInterface(p, l.outiface, l.outmask, (inv & INV.VIA_OUT) !== 0),
    protocol: proto ? { number: proto, name: protocolName(proto), invert: (inv & INV.PROTO) !== 0 } : null,
    fragment: l.fragFlag && flags & l.fragFlag ? { invert: (inv & INV.FRAG) !== 0 } : null,
    matches: raw.matches.map((m) => decodeExtension('match', m, family)),
    target: decodeTarget(raw, family, (flags & l.gotoFlag) !== 0),
    counters: { packets: raw.packets, bytes: raw.bytes },
  };
}

function decodeChain(raw: RawChain, family: IpFamily): Chain {
  return {
    name: raw.name,
    builtin: raw.builtin,
    policy: raw.builtin && VERDICTS.has(raw.policy) ? (raw.policy as Verdict) : null,
    counters: { packets: raw.packets, bytes: raw.bytes },
    references: raw.references,
    rules: raw.rules.map((r) => decodeRule(r, family)),
  };
}

export function decodeTable(raw: RawTable): Table {
  const family: IpFamily = raw.family === 4 ? 'ipv4' : 'ipv6';
  return { family, name: raw.name, chains: raw.chains.map((c) => decodeChain(c, family)) };
}
