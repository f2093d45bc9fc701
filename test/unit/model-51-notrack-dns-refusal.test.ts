// NOTRACK DNS is refused outside IPVS mode: iptables/nftables kube-proxy DNATs Service traffic
// through conntrack, so an untracked query to the DNS cluster IP would never reach a server.
import t from 'tap';

import { CHAINS, render, type ModelInput, type ProxyMode } from '../../lib/model/index.js';

const world = (proxyMode: ProxyMode, dropInvalidInput: boolean): ModelInput => ({
  config: {
    dropInvalidInput,
    externalCluster: false,
    externalIPs: false,
    notrackDns: true,
    dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
    families: ['ipv4', 'ipv6'],
    podCidrs: {},
    masqueradeBit: 14,
  },
  facts: { proxyMode, tcpBeLiberal: true },
  services: [{ metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } }],
  dnsEndpointSlices: [
    {
      metadata: { namespace: 'kube-system', name: 'kube-dns-1', labels: { 'kubernetes.io/service-name': 'kube-dns' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'] }],
      ports: [{ name: 'dns', protocol: 'UDP', port: 53 }],
    },
  ],
  node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24'] } },
});

for (const mode of ['iptables', 'nftables'] as const) {
  t.test(`${mode} mode: no NOTRACK and no ACCEPT rules, one warning saying why`, async (t) => {
    const state = render(world(mode, false));
    for (const table of state.tables) t.same({ chains: table.chains, jumps: table.jumps }, { chains: [], jumps: [] }, `${table.family} ${table.table}`);
    const warnings = state.findings.filter((f) => f.severity === 'warning');
    t.equal(warnings.length, 1);
    t.match(warnings[0], { fix: 'notrack-dns', reason: 'NotIPVSMode' });
    t.match(warnings[0]?.message, new RegExp(`${mode} mode.*untracked DNS packets would never reach a DNS server`));
  });

  t.test(`${mode} mode: the other fixes are unaffected`, async (t) => {
    const state = render(world(mode, true));
    for (const family of ['ipv4', 'ipv6'] as const) {
      const filter = state.tables.find((x) => x.family === family && x.table === 'filter')!;
      t.same(filter.chains.map((c) => c.name), [CHAINS.dropInvalid], `${family}: only drop-INVALID in filter`);
      t.same(state.tables.find((x) => x.family === family && x.table === 'raw')?.chains, []);
    }
  });
}

t.test('ipvs mode: the same world gets both tables', async (t) => {
  const state = render(world('ipvs', false));
  const v4 = (table: string) => state.tables.find((x) => x.family === 'ipv4' && x.table === table)!;
  t.same(v4('filter').chains.map((c) => c.name), [CHAINS.dnsAccept]);
  t.same(v4('raw').chains.map((c) => c.name), [CHAINS.dnsNotrack]);
  t.ok(v4('raw').chains[0]!.rules.length > 0);
});
