// The shape of a DesiredState: one TableState per configured family and managed table, even when
// empty (empty means "remove what nodenet had there"), only owned chains of legal length, each
// state valid for netfilter.apply.
import t from 'tap';

import { validateTableState, MAX_CHAIN_NAME } from '../../lib/kernel/netfilter/validate.js';
import { OWNED_PREFIX } from '../../lib/kernel/netfilter/apply.js';
import { CHAINS, render, TABLES, type FixesConfig, type ModelInput } from '../../lib/model/index.js';

const config = (over: Partial<FixesConfig> = {}): FixesConfig => ({
  dropInvalidInput: true,
  externalCluster: true,
  externalIPs: true,
  notrackDns: true,
  dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
  families: ['ipv4', 'ipv6'],
  podCidrs: {},
  masqueradeBit: 14,
  ...over,
});

const world = (c: FixesConfig): ModelInput => ({
  config: c,
  facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
  services: [
    { metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } },
    {
      metadata: { namespace: 'shop', name: 'web' },
      spec: { type: 'LoadBalancer', clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00:10:96::20'], externalIPs: ['198.51.100.7'], ports: [{ name: 'http', port: 80 }] },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: '2001:db8::10' }] } },
    },
  ],
  dnsEndpointSlices: [
    { metadata: { namespace: 'kube-system', name: 'a', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
    { metadata: { namespace: 'kube-system', name: 'b', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv6', endpoints: [{ addresses: ['fd00:10:244:1::5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
  ],
  node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
});

t.test('every fix on: which chains each table holds', async (t) => {
  const state = render(world(config()));
  t.same(
    state.tables.map((x) => [x.family, x.table, x.chains.map((c) => c.name)]),
    [
      ['ipv4', 'filter', [CHAINS.dnsAccept, CHAINS.dropInvalid]],
      ['ipv4', 'nat', [CHAINS.externalHost, CHAINS.externalPods]],
      ['ipv4', 'raw', [CHAINS.dnsNotrack]],
      ['ipv6', 'filter', [CHAINS.dnsAccept, CHAINS.dropInvalid]],
      ['ipv6', 'nat', [CHAINS.externalHost, CHAINS.externalPods]],
      ['ipv6', 'raw', [CHAINS.dnsNotrack]],
    ],
  );
  t.ok(state.tables.every((x) => x.chains.every((c) => c.rules.length > 0)), 'and every chain has rules');
});

t.test('every fix off: still one empty state per family and table', async (t) => {
  for (const families of [['ipv4'], ['ipv6'], ['ipv4', 'ipv6']] as const) {
    const state = render(world(config({ dropInvalidInput: false, externalCluster: false, notrackDns: false, families: [...families] })));
    t.same(state.tables, (['ipv4', 'ipv6'] as const).flatMap((family) => TABLES.map((table) => ({ family, table, chains: [], jumps: [] }))), families.join(','));
    t.same(state.findings, []);
  }
});

t.test('a family NET_STACK leaves out gets empty states, so its old rules go', async (t) => {
  const state = render(world(config({ families: ['ipv4'] })));
  const v6 = state.tables.filter((x) => x.family === 'ipv6');
  t.same(v6.map((x) => x.table), [...TABLES]);
  t.ok(v6.every((x) => x.chains.length === 0 && x.jumps.length === 0));
  t.ok(state.tables.filter((x) => x.family === 'ipv4').some((x) => x.chains.length > 0));
});

t.test('chain names: owned prefix, at most 28 bytes, distinct', async (t) => {
  const names = Object.values(CHAINS);
  t.equal(new Set(names).size, names.length);
  for (const n of names) {
    t.ok(n.startsWith(OWNED_PREFIX), n);
    t.ok(Buffer.byteLength(n) <= MAX_CHAIN_NAME, `${n} is ${Buffer.byteLength(n)} bytes`);
  }
});

t.test('each state passes netfilter.apply\'s validation, whatever the mode', async (t) => {
  for (const proxyMode of ['ipvs', 'iptables', 'nftables'] as const) {
    const state = render({ ...world(config()), facts: { proxyMode, tcpBeLiberal: null } });
    for (const table of state.tables) t.doesNotThrow(() => validateTableState(table, OWNED_PREFIX), `${proxyMode} ${table.family} ${table.table}`);
  }
});

t.test('jumps come only from builtin chains, into chains of the same state', async (t) => {
  const state = render(world(config()));
  for (const table of state.tables) {
    for (const j of table.jumps) {
      const target = j.rule.target;
      t.equal(target.kind, 'jump');
      if (target.kind === 'jump') t.ok(table.chains.some((c) => c.name === target.chain), `${table.table} ${j.chain} -> ${target.chain}`);
      t.notOk(j.chain.startsWith(OWNED_PREFIX));
    }
  }
});
