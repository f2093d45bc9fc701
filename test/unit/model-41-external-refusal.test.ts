// External-IP → Cluster-IP is refused outside IPVS mode: kube-proxy's iptables and nftables modes
// already serve external IPs from inside the cluster, and a DNAT here would black-hole them.
import t from 'tap';

import { render, type FixesConfig, type ModelInput, type ProxyMode } from '../../lib/model/index.js';

const config: FixesConfig = {
  dropInvalidInput: false,
  externalCluster: true,
  externalIPs: true,
  notrackDns: false,
  dnsServices: [],
  families: ['ipv4', 'ipv6'],
  podCidrs: { ipv4: ['10.244.0.0/16'], ipv6: ['fd00:10:244::/56'] },
  masqueradeBit: 14,
};

const world = (proxyMode: ProxyMode): ModelInput => ({
  config,
  facts: { proxyMode, tcpBeLiberal: null },
  services: [
    {
      metadata: { namespace: 'shop', name: 'web' },
      spec: { type: 'LoadBalancer', clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00:10:96::20'], externalIPs: ['198.51.100.7'], ports: [{ port: 80 }] },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: '2001:db8::10' }] } },
    },
  ],
  dnsEndpointSlices: [],
  node: null,
});

for (const mode of ['iptables', 'nftables'] as const) {
  t.test(`${mode} mode: no rules at all, one warning saying why`, async (t) => {
    const state = render(world(mode));
    for (const table of state.tables) {
      t.same({ chains: table.chains, jumps: table.jumps }, { chains: [], jumps: [] }, `${table.family} ${table.table} is empty (so earlier rules are removed)`);
    }
    t.equal(state.tables.length, 6, 'still one state per family and table');
    t.same(state.findings.length, 1);
    const [f] = state.findings;
    t.match(f, { severity: 'warning', fix: 'external-cluster', reason: 'NotIPVSMode' });
    t.match(f?.message, new RegExp(`${mode} mode`));
    t.match(f?.message, /black-hole/);
    t.notOk(f?.service, 'about the node, not a Service');
  });
}

t.test('ipvs mode: the same world does get rules', async (t) => {
  const state = render(world('ipvs'));
  t.ok(state.tables.filter((x) => x.table === 'nat').every((x) => x.chains.some((c) => c.rules.length > 0)));
  t.notOk(state.findings.some((f) => f.reason === 'NotIPVSMode'));
});
