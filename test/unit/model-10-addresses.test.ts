// The model's address arithmetic: parsing by family, canonical text, numeric order, prefix
// containment and intersection (the basis of family separation and source ranges).
import t from 'tap';

import {
  cidrContains,
  compareAddresses,
  formatAddress,
  formatCidr,
  intersectCidrs,
  minimalCidrs,
  parseAddress,
  parseCidr,
  uniqueAddresses,
  type Cidr,
} from '../../lib/model/addresses.js';

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad test CIDR ${text}`);
  return c;
};

t.test('addresses are classified by what they are', async (t) => {
  t.match(parseAddress('10.0.0.1'), { family: 'ipv4' });
  t.match(parseAddress('2001:db8::1'), { family: 'ipv6' });
  t.match(parseAddress('::ffff:10.0.0.1'), { family: 'ipv6' }, 'IPv4-mapped is IPv6');
  t.match(parseAddress('::'), { family: 'ipv6', value: 0n });
  for (const bad of ['', '10.0.0', '10.0.0.256', '10.0.0.1/32', '1.2.3.4.5', '2001:db8:::1', '2001:db8::1::2', '1:2:3:4:5:6:7:8:9', '12345::', 'fe80::1%eth0', 'g::1', ' 10.0.0.1', 'a.b.c.d', ':1', '1:2:3:4:5:6:7::8:9']) {
    t.equal(parseAddress(bad), null, JSON.stringify(bad));
  }
  t.equal(parseAddress(undefined), null);
});

t.test('canonical text: RFC 5952 for IPv6, decimal for IPv4', async (t) => {
  const cases: Array<[string, string]> = [
    ['10.0.0.1', '10.0.0.1'],
    ['010.000.000.001', '10.0.0.1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['1:0:0:0:1:0:0:1', '1::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fd00:10:96::', 'fd00:10:96::'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
  ];
  for (const [input, text] of cases) t.equal(formatAddress(parseAddress(input)!), text, input);
});

t.test('prefixes: host bits cleared, strict mode refuses them, a bare address is a host prefix', async (t) => {
  t.equal(formatCidr(cidr('10.244.1.7/16')), '10.244.0.0/16');
  t.equal(parseCidr('10.244.1.7/16', true), null);
  t.equal(formatCidr(cidr('10.0.0.1')), '10.0.0.1');
  t.match(cidr('10.0.0.1'), { prefix: 32 });
  t.equal(formatCidr(cidr('fd00:10:244:1::9/64')), 'fd00:10:244:1::/64');
  t.equal(formatCidr(cidr('0.0.0.0/0')), '0.0.0.0/0');
  for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/255.0.0.0', 'x/8']) t.equal(parseCidr(bad), null, bad);
});

t.test('containment and intersection', async (t) => {
  t.ok(cidrContains(cidr('10.0.0.0/8'), cidr('10.244.0.0/16')));
  t.notOk(cidrContains(cidr('10.244.0.0/16'), cidr('10.0.0.0/8')));
  t.ok(cidrContains(cidr('10.0.0.0/8'), cidr('10.0.0.0/8')));
  t.notOk(cidrContains(cidr('10.0.0.0/8'), cidr('fd00::/8')), 'never across families');
  t.ok(cidrContains(cidr('0.0.0.0/0'), cidr('192.0.2.1')));
  t.equal(formatCidr(intersectCidrs(cidr('10.0.0.0/8'), cidr('10.244.1.0/24'))!), '10.244.1.0/24');
  t.equal(formatCidr(intersectCidrs(cidr('10.244.1.0/24'), cidr('10.0.0.0/8'))!), '10.244.1.0/24', 'the narrower, either way round');
  t.equal(intersectCidrs(cidr('10.244.1.0/24'), cidr('10.244.2.0/24')), null);
  t.equal(intersectCidrs(cidr('10.0.0.0/8'), cidr('::/0')), null);
  t.equal(formatCidr(intersectCidrs(cidr('fd00::/8'), cidr('fd00:10:244::/56'))!), 'fd00:10:244::/56');
});

t.test('minimal sets and unique addresses are sorted numerically, not as text', async (t) => {
  t.same(minimalCidrs(['10.244.1.64/26', '10.0.0.0/8', '9.0.0.0/8', '10.244.0.0/16', '10.0.0.0/8'].map(cidr)).map(formatCidr), ['9.0.0.0/8', '10.0.0.0/8']);
  t.same(uniqueAddresses(['10.0.0.10', '10.0.0.9', '10.0.0.10', '9.255.255.255'].map((a) => parseAddress(a)!)).map(formatAddress), ['9.255.255.255', '10.0.0.9', '10.0.0.10']);
  t.ok(compareAddresses(parseAddress('10.0.0.1')!, parseAddress('::1')!) < 0, 'IPv4 before IPv6');
});
