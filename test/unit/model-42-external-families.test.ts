// Families: every address lands only in its own family's rules (network-node-manager #10 gave an
// IPv6 address an IPv4 rule), dual-stack Services use the cluster IP of the external IP's family,
// and pod CIDRs come from configuration, else from the Node, and are reported when missing.
import t from 'tap';

import { render, type FixesConfig, type ModelInput, type ServiceInput } from '../../lib/model/index.js';
import { save } from '../helpers/rendered.js';

const config = (over: Partial<FixesConfig> = {}): FixesConfig => ({
  dropInvalidInput: false,
  externalCluster: true,
  externalIPs: false,
  notrackDns: false,
  dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
  families: ['ipv4'],
  podCidrs: {},
  masqueradeBit: 14,
  ...over,
});

const web0: ServiceInput = {
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

const dual: ServiceInput = {
  metadata: { namespace: 'shop', name: 'web' },
  spec: { type: 'LoadBalancer', clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00:10:96::20'], ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'http', port: 80 }] },
  status: { loadBalancer: { ingress: [{ ip: '2001:db8::10' }, { ip: '203.0.113.10' }] } },
};
const both = config({ families: ['ipv6', 'ipv4'] });
const dualNode = { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } };

t.test('dual-stack: IPv4 to the IPv4 cluster IP in iptables, IPv6 to the IPv6 one in ip6tables', async (t) => {
  const state = render(world([dual], { config: both, node: dualNode }));
  t.same(state.tables.map((x) => `${x.family} ${x.table}`), ['ipv4 filter', 'ipv4 nat', 'ipv4 raw', 'ipv6 filter', 'ipv6 nat', 'ipv6 raw'], 'IPv4 first whatever NET_STACK\'s order');
  t.same(save(state, 'ipv4', 'nat').filter((l) => l.includes('PODS -s')), [
    '-A NODENET-EXTERNAL-PODS -s 10.244.1.0/24 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000',
    '-A NODENET-EXTERNAL-PODS -s 10.244.1.0/24 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j DNAT --to-destination 10.96.0.20:80',
  ]);
  t.same(save(state, 'ipv6', 'nat').filter((l) => l.includes('PODS -s')), [
    '-A NODENET-EXTERNAL-PODS -s fd00:10:244:1::/64 -d 2001:db8::10/128 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000',
    '-A NODENET-EXTERNAL-PODS -s fd00:10:244:1::/64 -d 2001:db8::10/128 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j DNAT --to-destination [fd00:10:96::20]:80',
  ]);
  t.same(state.findings, []);
});

t.test('IPv6-primary dual-stack: the cluster IP is still chosen by family, not by position', async (t) => {
  const s: ServiceInput = { ...dual, spec: { ...dual.spec, clusterIP: 'fd00:10:96::20', clusterIPs: ['fd00:10:96::20', '10.96.0.20'], ipFamilies: ['IPv6', 'IPv4'] } };
  const state = render(world([s], { config: both, node: dualNode }));
  t.match(save(state, 'ipv4', 'nat').join('\n'), /--to-destination 10\.96\.0\.20:80/);
  t.match(save(state, 'ipv6', 'nat').join('\n'), /--to-destination \[fd00:10:96::20\]:80/);
});

t.test('#10: an IPv6 LoadBalancer IP on a single-stack IPv4 Service never gets an IPv4 rule', async (t) => {
  const s: ServiceInput = { ...dual, spec: { ...dual.spec, clusterIPs: ['10.96.0.20'], ipFamilies: ['IPv4'] } };
  const state = render(world([s], { config: both, node: dualNode }));
  const v4 = save(state, 'ipv4', 'nat').join('\n');
  const v6 = save(state, 'ipv6', 'nat').join('\n');
  t.notMatch(v4, /2001:db8/, 'no IPv6 address in iptables');
  t.match(v4, /-d 203\.0\.113\.10\/32/, 'the IPv4 one is served');
  t.notMatch(v6, /-A NODENET-EXTERNAL-\w+ /, 'nothing to DNAT the IPv6 one to');
  t.match(state.findings, [{ severity: 'warning', reason: 'NoClusterIPForFamily', service: { namespace: 'shop', name: 'web' } }]);
  t.match(state.findings[0]?.message, /2001:db8::10 is IPv6 but the Service has no IPv6 cluster IP/);
});

t.test('a family NET_STACK leaves out gets no rules (only empty states, to remove old ones)', async (t) => {
  const state = render(world([dual], { node: dualNode }));
  t.ok(state.tables.filter((x) => x.family === 'ipv6').every((x) => x.chains.length === 0 && x.jumps.length === 0));
  t.notMatch(JSON.stringify(state.tables), /2001:db8|fd00/);
  t.same(state.findings, []);
});

t.test('pod CIDRs: POD_CIDR_* first, else the Node\'s spec.podCIDRs, else its spec.podCIDR', async (t) => {
  const sources = (input: ModelInput) =>
    [...new Set(save(render(input), 'ipv4', 'nat').filter((l) => l.includes('PODS -s')).map((l) => /-s (\S+)/.exec(l)?.[1]))];
  t.same(sources(world([web0])), ['10.244.1.0/24'], 'the Node');
  t.same(sources(world([web0], { config: config({ podCidrs: { ipv4: ['10.244.0.0/16'] } }) })), ['10.244.0.0/16'], 'configuration wins');
  t.same(sources(world([web0], { config: config({ podCidrs: { ipv4: ['10.245.0.0/16', '10.244.0.0/16'] } }) })), ['10.244.0.0/16', '10.245.0.0/16'], 'several, sorted');
  t.same(sources(world([web0], { config: config({ podCidrs: { ipv4: [] } }) })), ['10.244.1.0/24'], 'an empty list is as unset');
  t.same(sources(world([web0], { node: { metadata: { name: 'old' }, spec: { podCIDR: '10.244.7.0/24' } } })), ['10.244.7.0/24'], 'the pre-dual-stack field');
});

t.test('a family without a pod CIDR is reported; the node\'s own traffic is still served', async (t) => {
  const state = render(world([dual], { config: both, node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24'] } } }));
  const v6 = save(state, 'ipv6', 'nat');
  t.same(v6.filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS')), [], 'no pod rules without a pod CIDR');
  t.equal(v6.filter((l) => l.startsWith('-A NODENET-EXTERNAL-HOST')).length, 2, 'MARK and DNAT for the node');
  t.match(state.findings, [{ severity: 'warning', fix: 'external-cluster', reason: 'NoPodCIDR' }]);
  t.match(state.findings[0]?.message, /no IPv6 pod CIDR \(POD_CIDR_IPV6 unset and node node-1 has none in spec\.podCIDRs\)/);
  t.equal(state.findings.length, 1, 'only for the family missing one');
});

t.test('no Node and no configuration: reported per family, never silently skipped', async (t) => {
  const state = render(world([dual], { config: both, node: null }));
  t.same(state.findings.filter((f) => f.reason === 'NoPodCIDR').map((f) => /no (IPv\d)/.exec(f.message)?.[1]), ['IPv4', 'IPv6']);
});

t.test('a configured pod CIDR of the wrong family or that does not parse is reported and ignored', async (t) => {
  const state = render(world([web0], { config: config({ podCidrs: { ipv4: ['fd00::/64', 'nonsense', '10.244.0.0/16'] } }) }));
  t.same(state.findings.map((f) => [f.fix, f.reason]), [['config', 'InvalidPodCIDR'], ['config', 'InvalidPodCIDR']]);
  t.same([...new Set(save(state, 'ipv4', 'nat').filter((l) => l.includes('PODS -s')).map((l) => /-s (\S+)/.exec(l)?.[1]))], ['10.244.0.0/16']);
});

t.test('configured pod CIDRs that are all unusable: no silent fallback to the Node, and the finding says why', async (t) => {
  const state = render(world([web0], { config: config({ podCidrs: { ipv4: ['fd00::/64'] } }) }));
  t.same(save(state, 'ipv4', 'nat').filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS')), []);
  t.match(state.findings.find((f) => f.reason === 'NoPodCIDR')?.message, /^no IPv4 pod CIDR \(POD_CIDR_IPV4 has no valid IPv4 prefix\)/);
});

t.test('differently spelled equal IPv6 addresses are one address', async (t) => {
  const s: ServiceInput = { ...dual, status: { loadBalancer: { ingress: [{ ip: '2001:DB8:0:0::10' }, { ip: '2001:db8::10' }] } } };
  const v6 = save(render(world([s], { config: both, node: dualNode })), 'ipv6', 'nat').filter((l) => l.includes('DNAT'));
  t.equal(v6.length, 2, 'one DNAT for pods, one for the node');
});
