// parseFixesConfig: network-node-manager's variables and defaults, plus RULE_EXTERNAL_IPS_ENABLE
// and MASQUERADE_BIT; every invalid value is an error naming the variable and the accepted form.
import t from 'tap';

import { parseFixesConfig, type FixesConfig } from '../../lib/model/index.js';

function ok(env: Record<string, string | undefined>): FixesConfig {
  const r = parseFixesConfig(env);
  if ('errors' in r) throw new Error(r.errors.join('; '));
  return r.config;
}

function errors(env: Record<string, string | undefined>): string[] {
  const r = parseFixesConfig(env);
  return 'errors' in r ? r.errors : [];
}

t.test('defaults (an empty environment)', async (t) => {
  t.same(ok({}), {
    dropInvalidInput: true,
    externalCluster: false,
    externalIPs: false,
    notrackDns: false,
    dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
    families: ['ipv4'],
    podCidrs: {},
    masqueradeBit: 14,
  });
  t.same(ok({ RULE_DROP_INVALID_INPUT_ENABLE: '', NET_STACK: '  ', MASQUERADE_BIT: '' }), ok({}), 'empty means unset, as in network-node-manager');
});

t.test('booleans: true or false in any letter case', async (t) => {
  const c = ok({ RULE_DROP_INVALID_INPUT_ENABLE: 'FALSE', RULE_EXTERNAL_CLUSTER_ENABLE: 'True', RULE_EXTERNAL_IPS_ENABLE: 'true', RULE_NOT_TRACK_DNS_ENABLE: ' true ' });
  t.same([c.dropInvalidInput, c.externalCluster, c.externalIPs, c.notrackDns], [false, true, true, true]);
  for (const name of ['RULE_DROP_INVALID_INPUT_ENABLE', 'RULE_EXTERNAL_CLUSTER_ENABLE', 'RULE_EXTERNAL_IPS_ENABLE', 'RULE_NOT_TRACK_DNS_ENABLE']) {
    for (const bad of ['yes', '1', 'on', 'ture']) {
      const e = errors({ [name]: bad });
      t.equal(e.length, 1, `${name}=${bad}`);
      t.match(e[0], new RegExp(`^${name}="${bad}": expected true or false \\(any letter case; default (true|false)\\)$`));
    }
  }
});

t.test('RULE_NOT_TRACK_DNS_SERVICES: names in kube-system, or namespace/name', async (t) => {
  t.same(ok({ RULE_NOT_TRACK_DNS_SERVICES: 'kube-dns, dns/coredns,node-local-dns,kube-dns' }).dnsServices, [
    { namespace: 'kube-system', name: 'kube-dns' },
    { namespace: 'dns', name: 'coredns' },
    { namespace: 'kube-system', name: 'node-local-dns' },
  ]);
  for (const bad of ['a/b/c', 'Kube-DNS', 'kube-dns,', '/x', 'x/', '1dns', 'dns_1', `${'a'.repeat(64)}`]) {
    const e = errors({ RULE_NOT_TRACK_DNS_SERVICES: bad });
    t.equal(e.length, 1, bad);
    t.match(e[0], /^RULE_NOT_TRACK_DNS_SERVICES=".*": ".*" is not a Service; expected a comma-separated list of <name> \(in kube-system\) or <namespace>\/<name>/);
  }
});

t.test('NET_STACK: ipv4, ipv6 or both, in any order and case', async (t) => {
  t.same(ok({ NET_STACK: 'ipv6' }).families, ['ipv6']);
  t.same(ok({ NET_STACK: 'IPv6, ipv4' }).families, ['ipv4', 'ipv6']);
  t.same(ok({ NET_STACK: 'ipv4,ipv6' }).families, ['ipv4', 'ipv6']);
  for (const bad of ['ipv5', 'ipv4,', 'dual', 'ipv4;ipv6']) {
    t.same(errors({ NET_STACK: bad }), [`NET_STACK="${bad}": expected ipv4, ipv6 or ipv4,ipv6 (default ipv4)`]);
  }
});

t.test('POD_CIDR_IPV4 / POD_CIDR_IPV6: prefixes of their family', async (t) => {
  const c = ok({ POD_CIDR_IPV4: '10.244.0.0/16', POD_CIDR_IPV6: 'FD00:10:244::/56, fd00:20::/64' });
  t.same(c.podCidrs, { ipv4: ['10.244.0.0/16'], ipv6: ['fd00:10:244::/56', 'fd00:20::/64'] });
  t.same(ok({ POD_CIDR_IPV6: 'fd00::/64' }).podCidrs, { ipv6: ['fd00::/64'] }, 'only what is set');
  t.match(errors({ POD_CIDR_IPV4: 'fd00::/64' }), [/^POD_CIDR_IPV4="fd00::\/64": "fd00::\/64" is not an IPv4 CIDR; expected a prefix such as 10\.244\.0\.0\/16/]);
  t.match(errors({ POD_CIDR_IPV6: '10.0.0.0/8' }), [/^POD_CIDR_IPV6=.* is not an IPv6 CIDR; expected a prefix such as fd00:10:244::\/56/]);
  t.match(errors({ POD_CIDR_IPV4: '10.244.1.0/16' }), [/host bits set: did you mean 10\.244\.0\.0\/16\?/]);
  t.match(errors({ POD_CIDR_IPV4: '10.244.0.1' }), [/is not an IPv4 CIDR/], 'a prefix length is required');
  t.match(errors({ POD_CIDR_IPV4: '10.244.0.0/33' }), [/is not an IPv4 CIDR/]);
});

t.test('MASQUERADE_BIT: 0 to 31', async (t) => {
  t.equal(ok({ MASQUERADE_BIT: '0' }).masqueradeBit, 0);
  t.equal(ok({ MASQUERADE_BIT: '31' }).masqueradeBit, 31);
  t.equal(ok({ MASQUERADE_BIT: '15' }).masqueradeBit, 15);
  for (const bad of ['32', '-1', '14.0', '0x4000', 'fourteen', '100']) {
    t.match(errors({ MASQUERADE_BIT: bad }), [new RegExp(`^MASQUERADE_BIT="${bad.replace('.', '\\.')}": expected an integer from 0 to 31, kube-proxy's --iptables-masquerade-bit`)], bad);
  }
});

t.test('every error at once, so one restart fixes them all', async (t) => {
  const e = errors({ RULE_EXTERNAL_CLUSTER_ENABLE: 'yes', NET_STACK: 'ipv5', MASQUERADE_BIT: '99', POD_CIDR_IPV4: 'x' });
  t.same(e.map((m) => m.split('=')[0]), ['RULE_EXTERNAL_CLUSTER_ENABLE', 'NET_STACK', 'MASQUERADE_BIT', 'POD_CIDR_IPV4']);
  t.notOk('config' in parseFixesConfig({ NET_STACK: 'ipv5' }), 'no half-valid configuration is returned');
});
