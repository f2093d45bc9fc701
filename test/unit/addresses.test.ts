// Address text must equal glibc inet_ntop's, or rendered rules would differ from iptables-save.
import t from 'tap';

import { formatIPv4, formatIPv6, prefixLength } from '../../lib/kernel/netfilter/addresses.js';

function v6(groups: number[]): Uint8Array {
  const b = new Uint8Array(16);
  groups.forEach((g, i) => {
    b[2 * i] = g >> 8;
    b[2 * i + 1] = g & 0xff;
  });
  return b;
}

t.test('IPv6 compression as glibc prints it', async (t) => {
  const cases: Array<[number[], string]> = [
    [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
    [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
    [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
    [[0x2001, 0xdb8, 0, 1, 0, 0, 0, 1], '2001:db8:0:1::1'],
    [[1, 0, 0, 1, 0, 0, 1, 1], '1::1:0:0:1:1'],
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'],
    [[1, 0, 1, 0, 1, 0, 1, 0], '1:0:1:0:1:0:1:0'],
    [[0xfd00, 0x10, 0x96, 0, 0, 0, 0, 0xa], 'fd00:10:96::a'],
    [[0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0], 'ffff:ffff:ffff:ffff::'],
    [[0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001], '::ffff:10.0.0.1'],
    [[0, 0, 0, 0, 0, 0, 0x0102, 0x0304], '::1.2.3.4'],
    [[0, 0, 0, 0, 1, 0xffff, 0x0a00, 0x0001], '::1:ffff:a00:1'],
  ];
  for (const [groups, text] of cases) t.equal(formatIPv6(v6(groups)), text, text);
});

t.test('IPv4 and prefix lengths', async (t) => {
  t.equal(formatIPv4(Uint8Array.from([10, 244, 0, 1])), '10.244.0.1');
  t.equal(prefixLength(Uint8Array.from([255, 255, 255, 255])), 32);
  t.equal(prefixLength(Uint8Array.from([255, 255, 240, 0])), 20);
  t.equal(prefixLength(Uint8Array.from([0, 0, 0, 0])), 0);
  t.equal(prefixLength(Uint8Array.from([255, 0, 255, 0])), -1, 'a hole is not a prefix');
  t.equal(prefixLength(Uint8Array.from([255, 0b11101111, 0, 0])), -1);
  t.equal(prefixLength(new Uint8Array(16).fill(0xff)), 128);
});
