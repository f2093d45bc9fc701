// The sctp match codec (lib/kernel/netfilter/matches.ts): the bytes iptables 1.8.9 writes for
// `-m sctp` (struct xt_sctp_info, destination ports first, the four unused chunk-flag slots marked
// 0xff by sctp_init), decoded back to the same options and printed as iptables-save prints them.
// test/kernel/95.model-apply.test.ts checks the same bytes against iptables itself.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import { decodeRule } from '../../lib/kernel/netfilter/decode.js';
import { encodeRule } from '../../lib/kernel/netfilter/encode.js';
import { findCodec } from '../../lib/kernel/netfilter/extension.js';
import type { SctpOptions } from '../../lib/kernel/netfilter/matches.js';
import { Payload } from '../../lib/kernel/netfilter/payload.js';
import { saveRule } from '../../lib/kernel/netfilter/save.js';

const codec = findCodec('match', 'sctp', 0, 'ipv4')!;

// What lib/model/sctp.ts used to build by hand for `--dport 3868` (the layout iptables writes).
function legacyRawDport(port: number): Buffer {
  const raw = Buffer.alloc(292);
  raw.writeUInt16LE(port, 0);
  raw.writeUInt16LE(port, 2);
  for (let i = 0; i < 4; i++) raw.writeUInt8(0xff, 268 + 3 * i);
  raw.writeUInt32LE(0x2, 284);
  return raw;
}

t.test('b.sctp({ dport }) encodes the bytes the model used to write raw', async (t) => {
  const m = b.sctp({ dport: 3868 });
  t.equal(m.revision, 0);
  t.same(codec.encode!(m.options, 'ipv4'), legacyRawDport(3868));
});

t.test('source, ranges and inversion', async (t) => {
  const bytes = codec.encode!({ sourcePorts: { value: { from: 1024, to: 65535 }, invert: true }, destinationPorts: { value: { from: 0, to: 0xffff }, invert: false } } satisfies SctpOptions, 'ipv4');
  t.equal(bytes.length, 292);
  t.equal(bytes.readUInt16LE(4), 1024);
  t.equal(bytes.readUInt16LE(6), 65535);
  t.equal(bytes.readUInt16LE(0), 0);
  t.equal(bytes.readUInt16LE(2), 65535);
  t.equal(bytes.readUInt32LE(284), 0x3, 'both port flags');
  t.equal(bytes.readUInt32LE(288), 0x1, 'source inverted');
  t.same(codec.decode(new Payload(bytes), 'ipv4'), {
    sourcePorts: { value: { from: 1024, to: 65535 }, invert: true },
    destinationPorts: { value: { from: 0, to: 65535 }, invert: false },
  }, 'a flagged 0:65535 stays: libxt_sctp prints it');
  t.same(codec.decode(new Payload(codec.encode!({ sourcePorts: null, destinationPorts: null }, 'ipv4')), 'ipv4'), { sourcePorts: null, destinationPorts: null });
  t.throws(() => codec.encode!({ sourcePorts: { value: { from: 9, to: 8 }, invert: false }, destinationPorts: null }, 'ipv4'), /reversed/);
  t.throws(() => codec.encode!({ sourcePorts: null, destinationPorts: { value: { from: 70000, to: 70000 }, invert: false } }, 'ipv4'), /not 0-65535/);
});

t.test('printed as iptables-save prints it, through the whole rule codec', async (t) => {
  const rule = b.rule({ destination: '203.0.113.10', protocol: 'sctp' }, [b.comment('shop/voice:sig'), b.sctp({ sport: b.not([1, 2]), dport: 3868 })], b.dnat('10.96.0.30', 3868));
  const e = encodeRule(rule, 'ipv4');
  const decoded = decodeRule({ ip: e.ip, packets: 0n, bytes: 0n, matches: e.matches, target: e.target, verdict: '' }, 'ipv4');
  t.equal(saveRule('X', decoded, 'ipv4'), '-A X -d 203.0.113.10/32 -p sctp -m comment --comment "shop/voice:sig" -m sctp ! --sport 1:2 --dport 3868 -j DNAT --to-destination 10.96.0.30:3868');
  t.same(decoded.matches[1]?.options, { sourcePorts: { value: { from: 1, to: 2 }, invert: true }, destinationPorts: { value: { from: 3868, to: 3868 }, invert: false } });
});

t.test('chunk-type matching is kept raw rather than half decoded', async (t) => {
  const bytes = legacyRawDport(80);
  bytes.writeUInt32LE(0x2 | 0x4, 284);
  t.throws(() => codec.decode(new Payload(bytes), 'ipv4'), /--chunk-types is not decoded/);
  const decoded = decodeRule({ ip: encodeRule(b.rule({ protocol: 'sctp' }, [], b.accept()), 'ipv4').ip, packets: 0n, bytes: 0n, matches: [{ name: 'sctp', revision: 0, data: bytes }], target: { name: '', revision: 0, data: Buffer.alloc(0) }, verdict: 'ACCEPT' }, 'ipv4');
  t.equal(decoded.matches[0]?.options, null);
  t.match(saveRule('X', decoded, 'ipv4'), /-m sctp \[undecoded revision 0: /);
});
