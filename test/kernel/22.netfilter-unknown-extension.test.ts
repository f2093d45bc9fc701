// An extension nodenet does not model is kept with its name, revision and exact bytes.
import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import { makeNetns } from '../helpers/netns.js';
import { iptables } from '../helpers/witness.js';

t.test('-m length and -j TCPMSS survive as raw payloads', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv4', ['-A', 'OUTPUT', '-p', 'tcp', '-m', 'length', '!', '--length', '100:200', '-m', 'comment', '--comment', 'after', '-j', 'ACCEPT']);
  await iptables(ns, 'ipv4', ['-t', 'mangle', '-A', 'POSTROUTING', '-p', 'tcp', '--tcp-flags', 'SYN,RST', 'SYN', '-j', 'TCPMSS', '--set-mss', '1360']);
  const filter = await netfilter.read({ netns: ns.path, table: 'filter' });
  const rule = filter.chains.find((c) => c.name === 'OUTPUT')?.rules[0];
  const length = rule?.matches[0];
  t.equal(length?.name, 'length');
  t.equal(length?.revision, 0);
  t.equal(length?.options, null, 'not decoded');
  // struct xt_length_info { __u16 min, max; __u8 invert; } padded to 8 bytes
  const expected = Buffer.alloc(8);
  expected.writeUInt16LE(100, 0);
  expected.writeUInt16LE(200, 2);
  expected.writeUInt8(1, 4);
  t.same(length?.raw, expected, 'exact payload bytes');
  t.same(rule?.matches.map((m) => m.name), ['length', 'comment'], 'later matches are still read');
  t.same(rule?.target, { kind: 'verdict', verdict: 'ACCEPT' });
  t.match(netfilter.saveRule('OUTPUT', rule!, 'ipv4'), /^-A OUTPUT -p tcp -m length \[undecoded revision 0: 6400c80001000000\] -m comment --comment after -j ACCEPT$/);

  const mangle = await netfilter.read({ netns: ns.path, table: 'mangle' });
  const target = mangle.chains.find((c) => c.name === 'POSTROUTING')?.rules[0]?.target;
  t.match(target, { kind: 'extension', name: 'TCPMSS', revision: 0, options: null });
  if (target?.kind === 'extension') t.equal(target.raw.readUInt16LE(0), 1360, 'struct xt_tcpmss_info { __u16 mss; }');
});
