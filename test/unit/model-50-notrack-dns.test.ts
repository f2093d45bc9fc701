// NOTRACK DNS in IPVS mode: raw rules untrack UDP 53 to the DNS Services' cluster IPs, to their
// endpoints, and the endpoints' replies (by source port 53); filter ACCEPTs let untracked DNS
// through INPUT, OUTPUT and FORWARD.
import t from 'tap';

import { render, type EndpointSliceInput, type FixesConfig, type ModelInput, type ServiceInput } from '../../lib/model/index.js';
import { save } from '../helpers/rendered.js';

const config = (over: Partial<FixesConfig> = {}): FixesConfig => ({
  dropInvalidInput: false,
  externalCluster: false,
  externalIPs: false,
  notrackDns: true,
  dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
  families: ['ipv4'],
  podCidrs: {},
  masqueradeBit: 14,
  ...over,
});

const web: ServiceInput = {
  metadata: { namespace: 'shop', name: 'web' },
  spec: { type: 'LoadBalancer', clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
  status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } },
};

const world = (services: ServiceInput[], over: Partial<ModelInput> = {}): ModelInput => ({
  config: config(),
  facts: { proxyMode: 'ipvs', tcpBeLiberal: null },
  services,
  dnsEndpointSlices: [],
  node: { metadata: { name: 'node-1' }, spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] } },
  ...over,
});

const kubeDns = (clusterIPs: string[] = ['10.96.0.10'], ports: ServiceInput['spec']['ports'] = [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }]): ServiceInput => ({
  metadata: { namespace: 'kube-system', name: 'kube-dns' },
  spec: { type: 'ClusterIP', clusterIP: clusterIPs[0], clusterIPs, ports },
});

const slice = (name: string, addressType: string, addresses: string[][], over: Partial<EndpointSliceInput> = {}): EndpointSliceInput => ({
  metadata: { namespace: 'kube-system', name, labels: { 'kubernetes.io/service-name': 'kube-dns' } },
  addressType,
  endpoints: addresses.map((a, i) => ({ addresses: a, conditions: { ready: i !== 1 } })),
  ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }],
  ...over,
});

const dnsWorld = (services: ServiceInput[], slices: EndpointSliceInput[], over: Partial<ModelInput> = {}) => world(services, { dnsEndpointSlices: slices, ...over });

t.test('the raw and filter rules for kube-dns', async (t) => {
  const state = render(dnsWorld([kubeDns(), web], [slice('kube-dns-b', 'IPv4', [['10.244.2.7']]), slice('kube-dns-a', 'IPv4', [['10.244.1.5'], ['10.244.3.9']])]));
  t.same(save(state, 'ipv4', 'raw'), [
    '-A PREROUTING -m comment --comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack" -j NODENET-DNS-NOTRACK',
    '-A OUTPUT -m comment --comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack" -j NODENET-DNS-NOTRACK',
    ':NODENET-DNS-NOTRACK',
    '-A NODENET-DNS-NOTRACK -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns cluster IP" -m udp --dport 53 -j CT --notrack',
    '-A NODENET-DNS-NOTRACK -d 10.244.1.5/32 -p udp -m comment --comment "kube-system/kube-dns endpoint" -m udp --dport 53 -j CT --notrack',
    '-A NODENET-DNS-NOTRACK -s 10.244.1.5/32 -p udp -m comment --comment "kube-system/kube-dns endpoint reply" -m udp --sport 53 -j CT --notrack',
    '-A NODENET-DNS-NOTRACK -d 10.244.2.7/32 -p udp -m comment --comment "kube-system/kube-dns endpoint" -m udp --dport 53 -j CT --notrack',
    '-A NODENET-DNS-NOTRACK -s 10.244.2.7/32 -p udp -m comment --comment "kube-system/kube-dns endpoint reply" -m udp --sport 53 -j CT --notrack',
    '-A NODENET-DNS-NOTRACK -d 10.244.3.9/32 -p udp -m comment --comment "kube-system/kube-dns endpoint" -m udp --dport 53 -j CT --notrack',
    '-A NODENET-DNS-NOTRACK -s 10.244.3.9/32 -p udp -m comment --comment "kube-system/kube-dns endpoint reply" -m udp --sport 53 -j CT --notrack',
  ]);
  t.same(save(state, 'ipv4', 'filter'), [
    '-A INPUT -m comment --comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked" -j NODENET-DNS-ACCEPT',
    '-A FORWARD -m comment --comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked" -j NODENET-DNS-ACCEPT',
    '-A OUTPUT -m comment --comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked" -j NODENET-DNS-ACCEPT',
    ':NODENET-DNS-ACCEPT',
    '-A NODENET-DNS-ACCEPT -p udp -m comment --comment "nodenet: DNS queries nodenet took out of conntrack" -m conntrack --ctstate UNTRACKED -m udp --dport 53 -j ACCEPT',
    '-A NODENET-DNS-ACCEPT -p udp -m comment --comment "nodenet: DNS replies nodenet took out of conntrack" -m conntrack --ctstate UNTRACKED -m udp --sport 53 -j ACCEPT',
  ]);
  t.same(save(state, 'ipv4', 'nat'), [], 'NOTRACK needs no nat');
  t.same(state.findings, []);
});

t.test('not-ready endpoints are untracked too (a terminating server may still answer)', async (t) => {
  const state = render(dnsWorld([kubeDns()], [slice('a', 'IPv4', [['10.244.1.5'], ['10.244.1.6']])]));
  t.match(save(state, 'ipv4', 'raw').join('\n'), /-d 10\.244\.1\.6\/32/);
});

t.test('several DNS Services, by name or namespace/name; an endpoint shared by two is written once', async (t) => {
  const custom: ServiceInput = { metadata: { namespace: 'dns', name: 'coredns' }, spec: { clusterIP: '10.96.0.53', ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } };
  const customSlice = slice('coredns-x', 'IPv4', [['10.244.1.5'], ['10.244.9.9']], { metadata: { namespace: 'dns', name: 'coredns-x', labels: { 'kubernetes.io/service-name': 'coredns' } } });
  const cfg = config({ dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }, { namespace: 'dns', name: 'coredns' }, { namespace: 'kube-system', name: 'kube-dns' }] });
  const state = render(dnsWorld([kubeDns(), custom], [customSlice, slice('a', 'IPv4', [['10.244.1.5']])], { config: cfg }));
  const rules = save(state, 'ipv4', 'raw').filter((l) => l.startsWith('-A NODENET'));
  t.same(
    rules.map((l) => `${/-([sd]) (\S+)/.exec(l)?.slice(1).join(' ')} ${/--comment "([^"]+)"/.exec(l)?.[1]}`),
    [
      'd 10.96.0.53/32 dns/coredns cluster IP',
      'd 10.244.1.5/32 dns/coredns endpoint',
      's 10.244.1.5/32 dns/coredns endpoint reply',
      'd 10.244.9.9/32 dns/coredns endpoint',
      's 10.244.9.9/32 dns/coredns endpoint reply',
      'd 10.96.0.10/32 kube-system/kube-dns cluster IP',
    ],
    'sorted by namespace/name, 10.244.1.5 once',
  );
});

t.test('the rules follow the DNS Service: a new cluster IP replaces the old one', async (t) => {
  const slices = [slice('a', 'IPv4', [['10.244.1.5']])];
  const before = save(render(dnsWorld([kubeDns(['10.96.0.10'])], slices)), 'ipv4', 'raw').join('\n');
  const after = save(render(dnsWorld([kubeDns(['10.96.0.11'])], slices)), 'ipv4', 'raw').join('\n');
  t.match(before, /-d 10\.96\.0\.10\/32/);
  t.notMatch(after, /10\.96\.0\.10\//);
  t.match(after, /-d 10\.96\.0\.11\/32/);
});

t.test('only this Service\'s slices count: other names, other namespaces and FQDN slices are ignored', async (t) => {
  const others = [
    slice('x', 'IPv4', [['10.244.7.7']], { metadata: { namespace: 'kube-system', name: 'x', labels: { 'kubernetes.io/service-name': 'metrics' } } }),
    slice('y', 'IPv4', [['10.244.8.8']], { metadata: { namespace: 'other', name: 'y', labels: { 'kubernetes.io/service-name': 'kube-dns' } } }),
    slice('z', 'FQDN', [['dns.example']]),
    slice('w', 'IPv4', [['fd00::5', 'not-an-ip', '10.244.1.5']]),
  ];
  const text = save(render(dnsWorld([kubeDns()], others)), 'ipv4', 'raw').join('\n');
  t.notMatch(text, /10\.244\.7\.7|10\.244\.8\.8|dns\.example|fd00/);
  t.match(text, /-d 10\.244\.1\.5\/32/);
});

t.test('a missing DNS Service: a warning, no rules for it; the filter ACCEPTs stay', async (t) => {
  const state = render(dnsWorld([], []));
  t.same(save(state, 'ipv4', 'raw').filter((l) => l.startsWith('-A NODENET')), []);
  t.equal(save(state, 'ipv4', 'filter').filter((l) => l.startsWith('-A NODENET-DNS-ACCEPT')).length, 2, 'constant while the fix is on');
  t.match(state.findings, [{ severity: 'warning', fix: 'notrack-dns', reason: 'DNSServiceNotFound', service: { namespace: 'kube-system', name: 'kube-dns' } }]);
});

t.test('no endpoints: no rules at all for it (a half-untracked flow would still create conntrack entries)', async (t) => {
  for (const slices of [[], [slice('a', 'IPv4', [])], [slice('a', 'IPv4', [], { endpoints: undefined })]]) {
    const state = render(dnsWorld([kubeDns()], slices));
    t.same(save(state, 'ipv4', 'raw').filter((l) => l.startsWith('-A NODENET')), []);
    t.match(state.findings, [{ severity: 'warning', reason: 'NoDNSEndpoints' }]);
    t.notMatch(JSON.stringify(state.tables), /10\.244\.0\.0|10\.244\.1\.0/, 'no fallback to the pod CIDR');
  }
});

t.test('endpoints serving UDP 53 on another port: refused for that Service', async (t) => {
  const s = slice('a', 'IPv4', [['10.244.1.5']], { ports: [{ name: 'dns', protocol: 'UDP', port: 1053 }] });
  const state = render(dnsWorld([kubeDns()], [s]));
  t.same(save(state, 'ipv4', 'raw').filter((l) => l.startsWith('-A NODENET')), []);
  t.match(state.findings, [{ severity: 'warning', reason: 'TargetPortNot53' }]);
  t.match(state.findings[0]?.message, /port 1053/);
  const allPorts = render(dnsWorld([kubeDns()], [slice('a', 'IPv4', [['10.244.1.5']], { ports: [{ name: 'dns', protocol: 'UDP', port: null }] })]));
  t.same(allPorts.findings, [], 'a null port means every port, 53 included');
  const tcpElsewhere = render(dnsWorld([kubeDns()], [slice('a', 'IPv4', [['10.244.1.5']], { ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 1053 }] })]));
  t.same(tcpElsewhere.findings, [], 'only the UDP port matters');
});

t.test('a DNS Service without UDP 53, or headless: refused for that Service', async (t) => {
  const tcpOnly = render(dnsWorld([kubeDns(['10.96.0.10'], [{ name: 'dns-tcp', protocol: 'TCP', port: 53 }, { name: 'x', port: 53 }])], [slice('a', 'IPv4', [['10.244.1.5']])]));
  t.match(tcpOnly.findings, [{ reason: 'NoUDPPort53' }], 'protocol defaults to TCP');
  t.same(save(tcpOnly, 'ipv4', 'raw').filter((l) => l.startsWith('-A NODENET')), []);
  const headless = render(dnsWorld([kubeDns(['None'])], [slice('a', 'IPv4', [['10.244.1.5']])]));
  t.match(headless.findings, [{ reason: 'Headless' }]);
  t.same(save(headless, 'ipv4', 'raw').filter((l) => l.startsWith('-A NODENET')), []);
});

t.test('dual-stack DNS: each family gets its own cluster IP and endpoints, nothing crosses', async (t) => {
  const cfg = config({ families: ['ipv4', 'ipv6'] });
  const state = render(dnsWorld([kubeDns(['10.96.0.10', 'fd00:10:96::a'])], [slice('v4', 'IPv4', [['10.244.1.5']]), slice('v6', 'IPv6', [['fd00:10:244:1::5']])], { config: cfg }));
  const v4 = save(state, 'ipv4', 'raw').join('\n');
  const v6 = save(state, 'ipv6', 'raw').filter((l) => l.startsWith('-A NODENET'));
  t.notMatch(v4, /fd00/);
  t.same(v6.map((l) => /-([sd]) (\S+)/.exec(l)?.slice(1).join(' ')), ['d fd00:10:96::a/128', 'd fd00:10:244:1::5/128', 's fd00:10:244:1::5/128']);
  t.equal(save(state, 'ipv6', 'filter').filter((l) => l.startsWith('-A NODENET-DNS-ACCEPT')).length, 2);
  t.same(state.findings, []);
});

t.test('a single-stack IPv4 DNS Service on a dual-stack node: IPv6 DNS stays tracked, and that is said', async (t) => {
  const state = render(dnsWorld([kubeDns()], [slice('v4', 'IPv4', [['10.244.1.5']])], { config: config({ families: ['ipv4', 'ipv6'] }) }));
  t.same(save(state, 'ipv6', 'raw').filter((l) => l.startsWith('-A NODENET')), []);
  t.match(state.findings, [{ severity: 'info', reason: 'NoClusterIPForFamily' }]);
});

t.test('turned off: empty filter and raw tables, so applying them removes the rules', async (t) => {
  const state = render(dnsWorld([kubeDns()], [slice('a', 'IPv4', [['10.244.1.5']])], { config: config({ notrackDns: false }) }));
  for (const table of ['filter', 'raw']) t.same(state.tables.find((x) => x.table === table), { family: 'ipv4', table, chains: [], jumps: [] });
  t.same(state.findings, []);
});
