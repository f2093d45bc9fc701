// Which UDP destinations lose their conntrack flows after an apply: every external IP:port whose
// DNAT appeared, changed or went, read alike from the model's rules and from the kernel's.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import type { RuleSpec } from '../../lib/kernel/netfilter/index.js';
import { changedDestinations, udpDnats } from '../../lib/controller/node-fixes/stale-flows.js';

const dnat = (dst: string, port: number, to: string, toPort: number, proto: 'udp' | 'tcp' = 'udp'): RuleSpec =>
  b.rule({ source: '10.244.0.0/16', destination: dst, protocol: proto }, [proto === 'udp' ? b.udp({ dport: port }) : b.tcp({ dport: port })], b.dnat(to, toPort));

t.test('UDP DNATs of nodenet chains, one entry per destination', async (t) => {
  const map = udpDnats([
    {
      name: 'NODENET-EXTERNAL-PODS',
      rules: [
        b.rule({ destination: '203.0.113.1', protocol: 'udp' }, [b.udp({ dport: 53 })], b.orMark(0x4000)),
        dnat('203.0.113.1', 53, '10.96.0.10', 53),
        dnat('203.0.113.1/32', 53, '10.96.0.10', 53),
        dnat('203.0.113.1', 80, '10.96.0.10', 80, 'tcp'),
        dnat('203.0.113.0/24', 53, '10.96.0.10', 53),
        dnat('2001:db8:0:0::1', 5353, 'fd00:10:96::a', 53),
      ],
    },
    { name: 'KUBE-SERVICES', rules: [dnat('203.0.113.9', 53, '10.96.0.9', 53)] },
  ]);
  t.same([...map], [
    ['203.0.113.1 53', '10.96.0.10:53'],
    ['2001:db8::1 5353', 'fd00:10:96::a:53'],
  ], 'MARK, TCP, ranges and other chains are ignored; IPv6 spelled canonically');
});

t.test('appeared, changed and gone destinations; unchanged ones are left alone', async (t) => {
  const before = new Map([
    ['203.0.113.1 53', '10.96.0.10:53'],
    ['203.0.113.2 53', '10.96.0.11:53'],
    ['203.0.113.3 53', '10.96.0.12:53'],
  ]);
  const after = new Map([
    ['203.0.113.1 53', '10.96.0.10:53'],
    ['203.0.113.2 53', '10.96.0.99:53'],
    ['203.0.113.4 5353', '10.96.0.13:5353'],
  ]);
  t.same(changedDestinations(before, after), [
    { destination: '203.0.113.2', port: 53 },
    { destination: '203.0.113.3', port: 53 },
    { destination: '203.0.113.4', port: 5353 },
  ]);
  t.same(changedDestinations(after, after), []);
});
