// RuleSpec -> nf_tables expressions, per match and target and per family. The expected lines are
// what `nft --debug=netlink` (nftables 1.0.6) prints for the same rule typed in nft's syntax (shown
// above each case), so nodenet writes what nft itself writes. The one deliberate difference is the
// nat expression: it carries the max registers and flags the kernel echoes back (see encode.ts).
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import type { RawNftExpr } from '../../lib/kernel/native.js';
import { encodeNftRule } from '../../lib/kernel/netfilter/nft/encode.js';
import type { RuleSpec } from '../../lib/kernel/netfilter/spec.js';
import type { IpFamily } from '../../lib/kernel/netfilter/types.js';

// ---- libnftnl's debug rendering (expr_*_snprintf), enough of it for nodenet's expressions -----

function words(data: Buffer): string {
  const padded = Buffer.alloc(Math.ceil(data.length / 4) * 4);
  data.copy(padded);
  const out: string[] = [];
  for (let i = 0; i < padded.length; i += 4) out.push('0x' + padded.readUInt32LE(i).toString(16).padStart(8, '0'));
  return out.join(' ');
}

const META_KEYS: Record<number, string> = { 3: 'mark', 6: 'iifname', 7: 'oifname', 16: 'l4proto' };
const CMP_OPS = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'];
const BASES = ['link layer', 'network', 'transport', 'inner'];
const VERDICTS: Record<number, string> = { 0: 'drop', 1: 'accept', [-1]: 'continue', [-3]: 'jump', [-4]: 'goto', [-5]: 'return' };

function netlink(e: RawNftExpr): string {
  const n = (k: string) => e[k] as number;
  const d = (k: string) => e[k] as Buffer;
  switch (e.name) {
    case 'payload':
      return `[ payload load ${n('len')}b @ ${BASES[n('base')]} header + ${n('offset')} => reg ${n('dreg')} ]`;
    case 'cmp':
      return `[ cmp ${CMP_OPS[n('op')]} reg ${n('sreg')} ${words(d('data'))} ]`;
    case 'bitwise':
      return `[ bitwise reg ${n('dreg')} = ( reg ${n('sreg')} & ${words(d('mask'))} ) ^ ${words(d('xor'))} ]`;
    case 'meta':
      return e.dreg !== undefined ? `[ meta load ${META_KEYS[n('key')]} => reg ${n('dreg')} ]` : `[ meta set ${META_KEYS[n('key')]} with reg ${n('sreg')} ]`;
    case 'ct':
      return `[ ct load ${['state'][n('key')]} => reg ${n('dreg')} ]`;
    case 'fib': {
      const f = n('flags');
      const keys = [[1, 'saddr'], [2, 'daddr'], [8, 'iif'], [16, 'oif']].filter(([bit]) => f & (bit as number)).map(([, k]) => k);
      return `[ fib ${keys.join(' . ')} type => reg ${n('dreg')} ]`;
    }
    case 'counter':
      return `[ counter pkts ${String(e.packets)} bytes ${String(e.bytes)} ]`;
    case 'immediate':
      if (n('dreg') === 0) return `[ immediate reg 0 ${VERDICTS[n('verdict')]}${e.chain ? ` -> ${String(e.chain)}` : ''} ]`;
      return `[ immediate reg ${n('dreg')} ${words(d('data'))} ]`;
    case 'range':
      return `[ range ${n('op') === 1 ? 'neq' : 'eq'} reg ${n('sreg')} ${words(d('from_data'))} ${words(d('to_data'))} ]`;
    case 'nat': {
      let s = `[ nat ${n('type') === 1 ? 'dnat' : 'snat'} ${n('family') === 2 ? 'ip' : 'ip6'}`;
      for (const k of ['addr_min', 'addr_max', 'proto_min', 'proto_max']) if (e[`reg_${k}`] !== undefined) s += ` ${k} reg ${n(`reg_${k}`)}`;
      return `${s} flags 0x${n('flags').toString(16)} ]`;
    }
    case 'notrack':
      return '[ notrack ]';
    default:
      return `[ ${e.name} ? ]`;
  }
}

const jumpTo = (name: string) => `nat-${name}`;
const encode = (rule: RuleSpec, family: IpFamily = 'ipv4') => encodeNftRule(rule, { family, chainName: jumpTo });
const lines = (rule: RuleSpec, family: IpFamily = 'ipv4') => encode(rule, family).exprs.map(netlink);

t.test('addresses: full length, byte-aligned prefixes (short load), other prefixes and masks with holes', async (t) => {
  // ip saddr 10.244.0.0/16 ip daddr 203.0.113.10
  t.same(lines(b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10' }, [], b.accept())), [
    '[ payload load 2b @ network header + 12 => reg 1 ]',
    '[ cmp eq reg 1 0x0000f40a ]',
    '[ payload load 4b @ network header + 16 => reg 1 ]',
    '[ cmp eq reg 1 0x0a7100cb ]',
    '[ counter pkts 0 bytes 0 ]',
    '[ immediate reg 0 accept ]',
  ]);
  // ip saddr 10.244.0.0/20 (the host part masked off, as iptables does)
  t.same(lines(b.rule({ source: '10.244.7.9/20' }, [], { kind: 'none' })), [
    '[ payload load 4b @ network header + 12 => reg 1 ]',
    '[ bitwise reg 1 = ( reg 1 & 0x00f0ffff ) ^ 0x00000000 ]',
    '[ cmp eq reg 1 0x0000f40a ]',
    '[ counter pkts 0 bytes 0 ]',
  ]);
  // ip saddr & 255.0.255.0 != 10.0.0.0
  t.same(lines(b.rule({ source: b.not('10.0.0.0/255.0.255.0') }, [], b.drop())).slice(0, 3), [
    '[ payload load 4b @ network header + 12 => reg 1 ]',
    '[ bitwise reg 1 = ( reg 1 & 0x00ff00ff ) ^ 0x00000000 ]',
    '[ cmp neq reg 1 0x0000000a ]',
  ]);
  // ip6 saddr fd00:10:244::/56 ip6 daddr 2001:db8::10
  t.same(lines(b.rule({ source: 'fd00:10:244::/56', destination: '2001:db8::10' }, [], b.accept()), 'ipv6').slice(0, 4), [
    '[ payload load 7b @ network header + 8 => reg 1 ]',
    '[ cmp eq reg 1 0x100000fd 0x00004402 ]',
    '[ payload load 16b @ network header + 24 => reg 1 ]',
    '[ cmp eq reg 1 0xb80d0120 0x00000000 0x00000000 0x10000000 ]',
  ]);
  t.same(lines(b.rule({ source: '0.0.0.0/0' }, [], b.accept())), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 accept ]'], '0.0.0.0/0 matches everything: no expression');
  t.throws(() => encode(b.rule({ source: b.not('0.0.0.0/0') }, [], b.accept())), RangeError, '! 0.0.0.0/0 would match nothing');
  t.throws(() => encode(b.rule({ source: 'fd00::1' }, [], b.accept())), /not an ipv4 address/);
});

t.test('interfaces: exact names zero-padded to 16 bytes, a trailing + compares only the prefix', async (t) => {
  // iifname "veth*" oifname != "eth0"
  t.same(lines(b.rule({ inInterface: 'veth+', outInterface: b.not('eth0') }, [], b.accept())).slice(0, 4), [
    '[ meta load iifname => reg 1 ]',
    '[ cmp eq reg 1 0x68746576 ]',
    '[ meta load oifname => reg 1 ]',
    '[ cmp neq reg 1 0x30687465 0x00000000 0x00000000 0x00000000 ]',
  ]);
  t.same(lines(b.rule({ inInterface: '+' }, [], b.accept())), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 accept ]'], '+ alone is every interface');
  t.throws(() => encode(b.rule({ inInterface: 'a-very-long-name0' }, [], b.accept())), /shorter than 16 bytes/);
  t.throws(() => encode(b.rule({ inInterface: 'eth 0' }, [], b.accept())), /characters no interface has/);
});

t.test('protocol and ports: meta l4proto, then the transport header; ranges as nft writes them', async (t) => {
  // meta l4proto tcp tcp dport 80
  t.same(lines(b.rule({ protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.accept())).slice(0, 4), [
    '[ meta load l4proto => reg 1 ]',
    '[ cmp eq reg 1 0x00000006 ]',
    '[ payload load 2b @ transport header + 2 => reg 1 ]',
    '[ cmp eq reg 1 0x00005000 ]',
  ]);
  // udp sport 1024-65535 udp dport != 53
  t.same(lines(b.rule({ protocol: 'udp' }, [b.udp({ sport: [1024, 65535], dport: b.not(53) })], b.accept())).slice(2, 8), [
    '[ payload load 2b @ transport header + 0 => reg 1 ]',
    '[ cmp gte reg 1 0x00000004 ]',
    '[ cmp lte reg 1 0x0000ffff ]',
    '[ payload load 2b @ transport header + 2 => reg 1 ]',
    '[ cmp neq reg 1 0x00003500 ]',
    '[ counter pkts 0 bytes 0 ]',
  ]);
  // tcp sport != 1-2
  t.same(lines(b.rule({ protocol: 'tcp' }, [b.tcp({ sport: b.not([1, 2]) })], b.accept())).slice(2, 4), [
    '[ payload load 2b @ transport header + 0 => reg 1 ]',
    '[ range neq reg 1 0x00000100 0x00000200 ]',
  ]);
  // meta l4proto sctp sctp dport 3868
  t.same(lines(b.rule({ protocol: 'sctp' }, [b.sctp({ dport: 3868 })], b.accept())).slice(0, 4), [
    '[ meta load l4proto => reg 1 ]',
    '[ cmp eq reg 1 0x00000084 ]',
    '[ payload load 2b @ transport header + 2 => reg 1 ]',
    '[ cmp eq reg 1 0x00001c0f ]',
  ]);
  // meta l4proto != ipv6-icmp
  t.same(lines(b.rule({ protocol: b.not('ipv6-icmp') }, [], b.accept()), 'ipv6').slice(0, 2), ['[ meta load l4proto => reg 1 ]', '[ cmp neq reg 1 0x0000003a ]']);
  // ct state untracked udp dport 53: nft reads its own listing back with the l4proto dependency
  // right before the port, so nodenet puts it there.
  t.same(lines(b.rule({ protocol: 'udp' }, [b.ctstate(['UNTRACKED']), b.udp({ dport: 53 })], b.accept())).slice(0, 7), [
    '[ ct load state => reg 1 ]',
    '[ bitwise reg 1 = ( reg 1 & 0x00000040 ) ^ 0x00000000 ]',
    '[ cmp neq reg 1 0x00000000 ]',
    '[ meta load l4proto => reg 1 ]',
    '[ cmp eq reg 1 0x00000011 ]',
    '[ payload load 2b @ transport header + 2 => reg 1 ]',
    '[ cmp eq reg 1 0x00003500 ]',
  ]);
  // ip daddr 10.96.0.10 meta l4proto udp ct state untracked: with no port match it stays in the header.
  t.same(lines(b.rule({ destination: '10.96.0.10', protocol: 'udp' }, [b.ctstate(['UNTRACKED'])], b.accept()))[2], '[ meta load l4proto => reg 1 ]');
  t.same(lines(b.rule({ protocol: 'all' }, [], b.accept())), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 accept ]'], '-p all is no match');
  t.same(lines(b.rule({ protocol: 'tcp' }, [b.tcp({ dport: [0, 65535] })], b.accept())).length, 4, 'a port range 0:65535 is no match');
  t.throws(() => encode(b.rule({}, [b.tcp({ dport: 80 })], b.accept())), /-m tcp needs -p tcp/);
  t.throws(() => encode(b.rule({ protocol: 'udp' }, [b.sctp({ dport: 80 })], b.accept())), /-m sctp needs -p sctp/);
  t.throws(() => encode(b.rule({ protocol: 'tcp' }, [b.tcp({ dport: [90, 80] })], b.accept())), /reversed/);
  const flags = b.tcp({});
  (flags.options as { flags: unknown }).flags = { value: { mask: ['SYN'], compare: ['SYN'] }, invert: false };
  t.throws(() => encode(b.rule({ protocol: 'tcp' }, [flags], b.accept())), /--tcp-flags is not translated/);
});

t.test('conntrack state: the masked compare nft writes; one inverted state as !=, several as == 0', async (t) => {
  // ct state invalid
  t.same(lines(b.rule({}, [b.ctstate(['INVALID'])], b.drop())).slice(0, 3), [
    '[ ct load state => reg 1 ]',
    '[ bitwise reg 1 = ( reg 1 & 0x00000001 ) ^ 0x00000000 ]',
    '[ cmp neq reg 1 0x00000000 ]',
  ]);
  // ct state established,related,new,untracked
  t.same(lines(b.rule({}, [b.ctstate(['ESTABLISHED', 'RELATED', 'NEW', 'UNTRACKED'])], b.accept()))[1], '[ bitwise reg 1 = ( reg 1 & 0x0000004e ) ^ 0x00000000 ]');
  // ct state != established
  t.same(lines(b.rule({}, [b.ctstate(b.not(['ESTABLISHED']))], b.accept())).slice(0, 2), ['[ ct load state => reg 1 ]', '[ cmp neq reg 1 0x00000002 ]']);
  // ct state ! established,related (no bit of the mask set)
  t.same(lines(b.rule({}, [b.ctstate(b.not(['ESTABLISHED', 'RELATED']))], b.accept())).slice(1, 3), [
    '[ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]',
    '[ cmp eq reg 1 0x00000000 ]',
  ]);
  t.throws(() => encode(b.rule({}, [b.ctstate(['SNAT'])], b.accept())), /--ctstate SNAT is not translated/);
  const proto = b.ctstate(['NEW']);
  (proto.options as { protocol: unknown }).protocol = { value: 6, invert: false };
  t.throws(() => encode(b.rule({}, [proto], b.accept())), /only --ctstate is translated/);
});

t.test('addrtype: fib saddr/daddr type, the interface limits as . iif / . oif', async (t) => {
  // fib daddr type local fib saddr . iif type != local
  t.same(lines(b.rule({}, [b.addrtype({ dst: ['LOCAL'] }), b.addrtype({ src: b.not(['LOCAL']), limitIfaceIn: true })], b.accept())).slice(0, 4), [
    '[ fib daddr type => reg 1 ]',
    '[ cmp eq reg 1 0x00000002 ]',
    '[ fib saddr . iif type => reg 1 ]',
    '[ cmp neq reg 1 0x00000002 ]',
  ]);
  t.same(lines(b.rule({}, [b.addrtype({ src: ['BROADCAST'], dst: ['MULTICAST'], limitIfaceOut: true })], b.accept())).slice(0, 4), [
    '[ fib saddr . oif type => reg 1 ]',
    '[ cmp eq reg 1 0x00000003 ]',
    '[ fib daddr . oif type => reg 1 ]',
    '[ cmp eq reg 1 0x00000005 ]',
  ]);
  t.throws(() => encode(b.rule({}, [b.addrtype({ dst: ['LOCAL', 'BROADCAST'] })], b.accept())), /one type per rule/);
  t.throws(() => encode(b.rule({}, [b.addrtype({ dst: ['LOCAL'], limitIfaceIn: true, limitIfaceOut: true })], b.accept())), /exclude each other/);
});

t.test('mark match: a full mask is a plain compare, any other masks first', async (t) => {
  // meta mark & 0x00004000 == 0x00004000
  t.same(lines(b.rule({}, [b.mark(0x4000, 0x4000)], b.accept())).slice(0, 3), [
    '[ meta load mark => reg 1 ]',
    '[ bitwise reg 1 = ( reg 1 & 0x00004000 ) ^ 0x00000000 ]',
    '[ cmp eq reg 1 0x00004000 ]',
  ]);
  // meta mark != 0x00000010
  t.same(lines(b.rule({}, [b.mark(0x10, 0xffffffff, true)], b.accept())).slice(0, 2), ['[ meta load mark => reg 1 ]', '[ cmp neq reg 1 0x00000010 ]']);
});

t.test('targets: verdicts, jumps through the chain-name mapping, DNAT, MARK, CT --notrack', async (t) => {
  t.same(lines(b.rule({}, [], b.drop())), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 drop ]']);
  t.same(lines(b.rule({}, [], b.returnTarget())), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 return ]']);
  t.same(lines(b.rule({}, [], b.jump('NODENET-X'))), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 jump -> nat-NODENET-X ]']);
  t.same(lines(b.rule({}, [], b.goTo('NODENET-X'))), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 0 goto -> nat-NODENET-X ]']);
  t.same(lines(b.rule({}, [], { kind: 'none' })), ['[ counter pkts 0 bytes 0 ]'], 'no target: the rule only counts');
  // dnat to 10.96.0.10:80
  t.same(lines(b.rule({ protocol: 'tcp' }, [], b.dnat('10.96.0.10', 80))).slice(3), [
    '[ immediate reg 1 0x0a00600a ]',
    '[ immediate reg 2 0x00005000 ]',
    '[ nat dnat ip addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 2 flags 0x3 ]',
  ]);
  // dnat to 10.96.0.11
  t.same(lines(b.rule({}, [], b.dnat('10.96.0.11'))).slice(1), ['[ immediate reg 1 0x0b00600a ]', '[ nat dnat ip addr_min reg 1 addr_max reg 1 flags 0x1 ]']);
  // dnat to [fd00:10:96::a]:53
  t.same(lines(b.rule({ protocol: 'udp' }, [], b.dnat('fd00:10:96::a', 53)), 'ipv6').slice(3), [
    '[ immediate reg 1 0x100000fd 0x00009600 0x00000000 0x0a000000 ]',
    '[ immediate reg 2 0x00003500 ]',
    '[ nat dnat ip6 addr_min reg 1 addr_max reg 1 proto_min reg 2 proto_max reg 2 flags 0x3 ]',
  ]);
  const range = b.dnat('10.96.0.10', 80);
  Object.assign(range, { options: { addresses: { from: '10.96.0.10', to: '10.96.0.12' }, ports: { from: 80, to: 90, base: null }, random: true, randomFully: false, persistent: true } });
  t.same(lines(b.rule({ protocol: 'tcp' }, [], range)).slice(3), [
    '[ immediate reg 1 0x0a00600a ]',
    '[ immediate reg 2 0x0c00600a ]',
    '[ immediate reg 3 0x00005000 ]',
    '[ immediate reg 4 0x00005a00 ]',
    '[ nat dnat ip addr_min reg 1 addr_max reg 2 proto_min reg 3 proto_max reg 4 flags 0xf ]',
  ]);
  // meta mark set meta mark or 0x4000
  t.same(lines(b.rule({}, [], b.orMark(0x4000))), [
    '[ counter pkts 0 bytes 0 ]',
    '[ meta load mark => reg 1 ]',
    '[ bitwise reg 1 = ( reg 1 & 0xffffbfff ) ^ 0x00004000 ]',
    '[ meta set mark with reg 1 ]',
  ]);
  // meta mark set 0x5
  t.same(lines(b.rule({}, [], b.setXMark(5, 0xffffffff))), ['[ counter pkts 0 bytes 0 ]', '[ immediate reg 1 0x00000005 ]', '[ meta set mark with reg 1 ]']);
  t.same(lines(b.rule({ protocol: 'udp' }, [b.udp({ dport: 53 })], b.notrack())).slice(-2), ['[ counter pkts 0 bytes 0 ]', '[ notrack ]']);
});

t.test('the comment is userdata, not an expression', async (t) => {
  const r = encode(b.rule({}, [b.comment('shop/web')], b.accept()));
  t.same(r.exprs.map((e) => e.name), ['counter', 'immediate']);
  t.same(r.userdata, Buffer.from('\x00\x09shop/web\x00', 'latin1'), 'as nft --debug=netlink shows it: { \\x00\\x09shop/web\\x00 }');
  t.equal(encode(b.rule({}, [], b.accept())).userdata, null);
  t.throws(() => encode(b.rule({}, [b.comment('a'), b.comment('b')], b.accept())), /more than one comment/);
});

t.test('what has no faithful nftables form is refused, naming it', async (t) => {
  const refuse = (rule: RuleSpec, why: RegExp, family: IpFamily = 'ipv4') => t.throws(() => encode(rule, family), why);
  refuse({ ...b.rule({}, [], b.accept()), fragment: { invert: false } }, /-f \(fragments\)/);
  refuse(b.rule({}, [{ name: 'multiport', options: { direction: 'destination', ports: [{ from: 1, to: 1 }], invert: false } }], b.accept()), /-m multiport is not translated/);
  refuse(b.rule({}, [{ name: 'tcp', revision: 0, raw: Buffer.alloc(12) }], b.accept()), /raw bytes/);
  refuse(b.rule({}, [], { kind: 'verdict', verdict: 'QUEUE' }), /-j QUEUE is not translated/);
  refuse(b.rule({}, [], { kind: 'extension', name: 'LOG', options: { prefix: 'x' } }), /-j LOG is not translated/);
  refuse(b.rule({}, [], { kind: 'extension', name: 'DNAT', revision: 2, raw: Buffer.alloc(44) }), /raw bytes/);
  refuse(b.rule({}, [], { kind: 'extension', name: 'CT', options: { notrack: false, notrackAlias: false, helper: 'ftp', timeout: '', ctEvents: [], expectationEvents: [], zone: 0, zoneFromMark: false, zoneDirection: 'both' } }), /CT other than --notrack/);
  refuse(b.rule({}, [], b.dnat('fd00::1')), /not an ipv4 address/);
  const ports = b.dnat('10.0.0.1', 80);
  Object.assign(ports, { options: { addresses: null, ports: { from: 80, to: 80, base: null }, random: false, randomFully: false, persistent: false } });
  refuse(b.rule({ protocol: 'tcp' }, [], ports), /DNAT without an address/);
});
