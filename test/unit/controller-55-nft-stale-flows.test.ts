// The UDP DNATs nodenet's nf_tables rules hold, read back from their expressions, agree with what
// the same rules say as RuleSpecs: after a restart on the nftables backend, the "before" of the
// stale-flow deletion is what the kernel holds.
import t from 'tap';

import { udpDnats, nftUdpDnat } from '../../lib/controller/node-fixes/stale-flows.js';
import * as b from '../../lib/kernel/netfilter/build.js';
import type { IpFamily, RuleSpec } from '../../lib/kernel/netfilter/index.js';
import { encodeNftRule } from '../../lib/kernel/netfilter/nft/encode.js';

function throughNft(rule: RuleSpec, family: IpFamily) {
  return nftUdpDnat(encodeNftRule(rule, { family, chainName: (c) => `nat-${c}` }).exprs, family);
}

t.test('a UDP DNAT reads back as the same flow key and target, per family', async (t) => {
  const cases: Array<[IpFamily, RuleSpec]> = [
    ['ipv4', b.rule({ source: '10.244.0.0/16', destination: '203.0.113.7', protocol: 'udp' }, [b.comment('a/b'), b.udp({ dport: 53 })], b.dnat('10.96.0.10', 5353))],
    ['ipv4', b.rule({ destination: '203.0.113.8/32', protocol: 'udp' }, [b.udp({ dport: 8080 })], b.dnat('10.96.0.11', 8080))],
    ['ipv6', b.rule({ destination: '2001:db8::7', protocol: 'udp' }, [b.udp({ dport: 53 })], b.dnat('fd00:0:0:0::a', 53))],
  ];
  for (const [family, rule] of cases) {
    const legacy = [...udpDnats([{ name: 'NODENET-EXTERNAL-PODS', rules: [rule] }]).entries()];
    t.equal(legacy.length, 1);
    t.same(throughNft(rule, family), legacy[0], JSON.stringify(legacy[0]));
  }
});

t.test('rules that are not a single UDP flow key are not read as one', async (t) => {
  t.equal(throughNft(b.rule({ destination: '203.0.113.7', protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.dnat('10.96.0.10', 80)), 'ipv4'), null, 'TCP');
  t.equal(throughNft(b.rule({ destination: '203.0.113.0/24', protocol: 'udp' }, [b.udp({ dport: 53 })], b.dnat('10.96.0.10', 53)), 'ipv4'), null, 'a prefix');
  t.equal(throughNft(b.rule({ destination: b.not('203.0.113.7'), protocol: 'udp' }, [b.udp({ dport: 53 })], b.dnat('10.96.0.10', 53)), 'ipv4'), null, 'a negation');
  t.equal(throughNft(b.rule({ destination: '203.0.113.7', protocol: 'udp' }, [b.udp({ dport: 53 })], b.orMark(0x4000)), 'ipv4'), null, 'the MARK rule');
});
