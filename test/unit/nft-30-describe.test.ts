// The describer: expressions as dumped -> one line of nft syntax. The expected lines are what
// `nft list` (nftables 1.0.6) prints for the same rules (test/kernel/97.nft-backend.test.ts compares
// the two on rules in the kernel); shapes it does not know come out generic, and nothing throws.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import type { RawNftExpr } from '../../lib/kernel/native.js';
import { describeNftRule, genericExpr } from '../../lib/kernel/netfilter/nft/describe.js';
import { encodeNftRule } from '../../lib/kernel/netfilter/nft/encode.js';
import type { RuleSpec } from '../../lib/kernel/netfilter/spec.js';
import type { IpFamily } from '../../lib/kernel/netfilter/types.js';

const describe = (rule: RuleSpec, family: IpFamily = 'ipv4') => describeNftRule(encodeNftRule(rule, { family, chainName: (n) => `nat-${n}` }), family);

t.test("nodenet's rules read as nft prints them", async (t) => {
  const cases: Array<[RuleSpec, string, IpFamily?]> = [
    [
      b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.orMark(0x4000)),
      'ip saddr 10.244.0.0/16 ip daddr 203.0.113.10 tcp dport 80 counter meta mark set meta mark | 0x00004000 comment "shop/web"',
    ],
    [b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.dnat('10.96.0.10', 80)), 'ip saddr 10.244.0.0/16 ip daddr 203.0.113.10 tcp dport 80 counter dnat to 10.96.0.10:80'],
    [b.rule({ source: '10.244.7.9/20', protocol: 'udp' }, [b.udp({ sport: [1024, 65535], dport: 53 })], b.dnat('10.96.0.11')), 'ip saddr 10.244.0.0/20 udp sport 1024-65535 udp dport 53 counter dnat to 10.96.0.11'],
    [b.rule({ source: b.not('10.0.0.0/255.0.255.0') }, [b.mark(0x4000, 0x4000, true)], b.returnTarget()), 'ip saddr & 255.0.255.0 != 10.0.0.0 meta mark & 0x00004000 != 0x00004000 counter return'],
    [b.rule({}, [b.addrtype({ dst: b.not(['LOCAL']) })], b.goTo('NODENET-M')), 'fib daddr type != local counter goto nat-NODENET-M'],
    [b.rule({}, [b.addrtype({ src: ['LOCAL'], limitIfaceIn: true })], b.jump('NODENET-M')), 'fib saddr . iif type local counter jump nat-NODENET-M'],
    [b.rule({ protocol: 'sctp', destination: '10.0.0.0/8' }, [b.sctp({ dport: 3868 }), b.ctstate(b.not(['ESTABLISHED', 'RELATED']))], { kind: 'none' }), 'ip daddr 10.0.0.0/8 sctp dport 3868 ct state ! established,related counter'],
    [b.rule({ protocol: 'tcp' }, [b.ctstate(['INVALID']), b.tcp({ sport: b.not([1, 2]) })], b.dnat('10.96.0.12', 8080)), 'ct state invalid tcp sport != 1-2 counter dnat to 10.96.0.12:8080'],
    [b.rule({}, [b.ctstate(b.not(['NEW']))], b.accept()), 'ct state != new counter accept'],
    [b.rule({ protocol: b.not('tcp') }, [], { kind: 'none' }), 'meta l4proto != tcp counter'],
    [b.rule({ protocol: 'tcp' }, [], b.accept()), 'meta l4proto tcp counter accept'],
    [b.rule({}, [], b.setXMark(5, 0xffffffff)), 'counter meta mark set 0x00000005'],
    [b.rule({}, [], b.setXMark(0x1, 0xff)), 'counter meta mark set meta mark & 0xffffff01 | 0x00000001'],
    [b.rule({ inInterface: 'veth+', outInterface: b.not('eth0') }, [], b.drop()), 'iifname "veth*" oifname != "eth0" counter drop'],
    [b.rule({ destination: '10.96.0.10', protocol: 'udp' }, [b.comment('kube-system/kube-dns cluster IP'), b.udp({ dport: 53 })], b.notrack()), 'ip daddr 10.96.0.10 udp dport 53 counter notrack comment "kube-system/kube-dns cluster IP"'],
    [b.rule({}, [b.comment('say "hi"')], b.accept()), 'counter accept comment "say \\"hi\\""'],
    [
      b.rule({ source: 'fd00:10:244::/56', destination: '2001:db8::10', protocol: 'udp' }, [b.udp({ dport: 53 })], b.dnat('fd00:10:96::a', 53)),
      'ip6 saddr fd00:10:244::/56 ip6 daddr 2001:db8::10 udp dport 53 counter dnat to [fd00:10:96::a]:53',
      'ipv6',
    ],
    [b.rule({ destination: '2001:db8::11', protocol: 'tcp' }, [b.tcp({ dport: 443 })], b.dnat('fd00:10:96::b')), 'ip6 daddr 2001:db8::11 tcp dport 443 counter dnat to fd00:10:96::b', 'ipv6'],
    [b.rule({ protocol: b.not('ipv6-icmp'), inInterface: 'eth0' }, [b.mark(0x4000)], b.orMark(0x4000)), 'iifname "eth0" meta l4proto != ipv6-icmp meta mark 0x00004000 counter meta mark set meta mark | 0x00004000', 'ipv6'],
  ];
  for (const [rule, text, family] of cases) t.equal(describe(rule, family), text);
});

t.test('counters when asked for', async (t) => {
  const r = encodeNftRule(b.rule({}, [], b.accept()), { family: 'ipv4', chainName: (n) => n });
  const dumped = { exprs: r.exprs.map((e) => (e.name === 'counter' ? { ...e, packets: 3n, bytes: 180n } : e)), userdata: null };
  t.equal(describeNftRule(dumped, 'ipv4', { counters: true }), 'counter packets 3 bytes 180 accept');
  t.equal(describeNftRule(dumped, 'ipv4'), 'counter accept');
});

t.test('rules nodenet does not write still read as nft prints them', async (t) => {
  const e = (name: string, attrs: Record<string, number | Buffer | string | bigint>): RawNftExpr => ({ name, ...attrs });
  const le = (n: number) => {
    const x = Buffer.alloc(4);
    x.writeUInt32LE(n);
    return x;
  };
  // th dport 53 drop: no protocol before the transport field.
  t.equal(
    describeNftRule({ exprs: [e('payload', { dreg: 1, base: 2, offset: 2, len: 2 }), e('cmp', { sreg: 1, op: 0, data: Buffer.from([0, 53]) }), e('immediate', { dreg: 0, verdict: 0 })] }, 'ipv4'),
    'th dport 53 drop',
  );
  // ip protocol tcp accept
  t.equal(describeNftRule({ exprs: [e('payload', { dreg: 1, base: 1, offset: 9, len: 1 }), e('cmp', { sreg: 1, op: 0, data: Buffer.from([6]) }), e('immediate', { dreg: 0, verdict: 1 })] }, 'ipv4'), 'ip protocol tcp accept');
  // meta mark set meta mark xor 0x3 / and 0xff
  const markSet = (mask: number, xor: number) => describeNftRule({ exprs: [e('meta', { key: 3, dreg: 1 }), e('bitwise', { sreg: 1, dreg: 1, len: 4, op: 0, mask: le(mask), xor: le(xor) }), e('meta', { key: 3, sreg: 1 })] }, 'ipv4');
  t.equal(markSet(0xffffffff, 3), 'meta mark set meta mark ^ 0x00000003');
  t.equal(markSet(0xff, 0), 'meta mark set meta mark & 0x000000ff');
  // ct state new,untracked continue; ct mark 0x10
  t.equal(
    describeNftRule(
      {
        exprs: [
          e('ct', { key: 3, dreg: 1 }),
          e('cmp', { sreg: 1, op: 0, data: le(0x10) }),
          e('ct', { key: 0, dreg: 1 }),
          e('bitwise', { sreg: 1, dreg: 1, len: 4, op: 0, mask: le(0x48), xor: le(0) }),
          e('cmp', { sreg: 1, op: 1, data: le(0) }),
          e('immediate', { dreg: 0, verdict: -1 }),
        ],
      },
      'ipv4',
    ),
    'ct mark 0x00000010 ct state new,untracked continue',
  );
  // ip6 saddr fd00::/60 dnat to a range
  t.equal(
    describeNftRule(
      {
        exprs: [
          e('payload', { dreg: 1, base: 1, offset: 8, len: 16 }),
          e('bitwise', { sreg: 1, dreg: 1, len: 16, op: 0, mask: Buffer.from('fffffffffffffff00000000000000000', 'hex'), xor: Buffer.alloc(16) }),
          e('cmp', { sreg: 1, op: 0, data: Buffer.from('fd000000000000000000000000000000', 'hex') }),
          e('immediate', { dreg: 1, data: Buffer.from('fd000010009600000000000000000b00', 'hex') }),
          e('immediate', { dreg: 2, data: Buffer.from('fd000010009600000000000000000c00', 'hex') }),
          e('nat', { type: 1, family: 10, reg_addr_min: 1, reg_addr_max: 2, flags: 1 }),
        ],
      },
      'ipv6',
    ),
    'ip6 saddr fd00::/60 dnat to fd00:10:96::b00-fd00:10:96::c00',
  );
});

t.test('unknown shapes are generic, and describing never throws', async (t) => {
  const lookup: RawNftExpr = { name: 'lookup', sreg: 1, set: '__set0', flags: 1 };
  t.equal(genericExpr(lookup), 'lookup(sreg=1,set=__set0,flags=1)');
  t.equal(
    describeNftRule({ exprs: [{ name: 'payload', dreg: 1, base: 1, offset: 16, len: 4 }, lookup, { name: 'immediate', dreg: 0, verdict: 1 }] }, 'ipv4'),
    'lookup(sreg=1,set=__set0,flags=1) accept',
  );
  t.equal(describeNftRule({ exprs: [{ name: 'cmp', sreg: 7, op: 0, data: Buffer.from([1]) }] }, 'ipv4'), 'cmp(sreg=7,op=0,data=0x01)', 'a compare of a register nothing loaded');
  t.equal(describeNftRule({ exprs: [{ name: 'payload', dreg: 1, base: 2, offset: 13, len: 1 }, { name: 'cmp', sreg: 1, op: 0, data: Buffer.from([2]) }] }, 'ipv4'), '@th,104,8 0x02');
  t.equal(describeNftRule({ exprs: [{ name: 'meta', key: 3 }] }, 'ipv4'), 'meta(key=3)');
  t.equal(describeNftRule({ exprs: [{ name: 'nat', type: 1, family: 2, reg_addr_min: 5 }] }, 'ipv4'), 'nat(type=1,family=2,reg_addr_min=5)', 'a nat from a register holding nothing known');
  t.equal(describeNftRule({ exprs: [], userdata: Buffer.from([0, 200, 1]) }, 'ipv4'), '', 'broken userdata: no comment');
  const hostile = { exprs: [{ name: 'cmp', sreg: 1, op: 0, get data(): Buffer { throw new Error('boom'); } } as unknown as RawNftExpr] };
  t.doesNotThrow(() => describeNftRule(hostile, 'ipv4'));
});
