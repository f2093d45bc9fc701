// External-IP → Cluster-IP in IPVS mode: per LoadBalancer IP and Service port, pods (PREROUTING,
// from the pod CIDR) and the node itself (OUTPUT, locally sourced) are marked for kube-proxy's
// masquerade and DNATed to the cluster IP and port.
import t from 'tap';

import { CHAINS, render, type FixesConfig, type ModelInput, type ServiceInput } from '../../lib/model/index.js';
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

t.test('a LoadBalancer IP: MARK then DNAT, for pods and for the node', async (t) => {
  const state = render(world([web]));
  t.same(save(state, 'ipv4', 'nat'), [
    '-A PREROUTING -m comment --comment "nodenet external-cluster: pods reach external IPs through cluster IPs" -j NODENET-EXTERNAL-PODS',
    '-A OUTPUT -m comment --comment "nodenet external-cluster: the node reaches external IPs through cluster IPs" -m addrtype --src-type LOCAL -j NODENET-EXTERNAL-HOST',
    ':NODENET-EXTERNAL-HOST',
    '-A NODENET-EXTERNAL-HOST -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000',
    '-A NODENET-EXTERNAL-HOST -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j DNAT --to-destination 10.96.0.20:80',
    ':NODENET-EXTERNAL-PODS',
    '-A NODENET-EXTERNAL-PODS -s 10.244.1.0/24 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000',
    '-A NODENET-EXTERNAL-PODS -s 10.244.1.0/24 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80 -j DNAT --to-destination 10.96.0.20:80',
  ]);
  t.same(state.findings, [], 'nothing to report');
  t.same(save(state, 'ipv4', 'filter'), [], 'filter untouched');
  t.same(save(state, 'ipv4', 'raw'), [], 'raw untouched');
});

t.test('a port without a name is commented with the Service alone; protocol defaults to TCP', async (t) => {
  const s: ServiceInput = { ...web, spec: { ...web.spec, ports: [{ port: 8080 }] } };
  const rules = save(render(world([s])), 'ipv4', 'nat').filter((l) => l.includes('PODS -s'));
  t.match(rules[0], /-p tcp -m comment --comment "shop\/web" -m tcp --dport 8080 -j MARK/);
  t.match(rules[1], /-j DNAT --to-destination 10.96.0.20:8080$/);
});

t.test('every port of the Service gets its own pair, UDP and SCTP too', async (t) => {
  const s: ServiceInput = {
    ...web,
    spec: { ...web.spec, ports: [{ name: 'https', protocol: 'TCP', port: 443 }, { name: 'dns', protocol: 'UDP', port: 53 }, { name: 'diameter', protocol: 'SCTP', port: 3868 }, { name: 'http', protocol: 'TCP', port: 80 }] },
  };
  const pods = save(render(world([s])), 'ipv4', 'nat').filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS') && l.includes('DNAT'));
  t.same(pods.map((l) => /--to-destination (\S+)/.exec(l)?.[1]), ['10.96.0.20:3868', '10.96.0.20:80', '10.96.0.20:443', '10.96.0.20:53'], 'sorted by protocol, then port');
  t.match(pods[0], /-p sctp -m comment --comment "shop\/web:diameter" -m sctp /, 'SCTP matched with -m sctp');
  t.match(pods[3], /-p udp -m comment --comment "shop\/web:dns" -m udp --dport 53 /);
});

t.test('the masquerade bit is kube-proxy\'s, set directly rather than through KUBE-MARK-MASQ', async (t) => {
  for (const [bit, mark] of [[14, '0x4000'], [0, '0x1'], [31, '0x80000000'], [15, '0x8000']] as const) {
    const text = save(render(world([web], { config: config({ masqueradeBit: bit }) })), 'ipv4', 'nat').join('\n');
    t.match(text, new RegExp(`-j MARK --set-xmark ${mark}/${mark}`), `bit ${bit}`);
    t.notMatch(text, /KUBE-MARK-MASQ/);
  }
  const bad = render(world([web], { config: config({ masqueradeBit: 32 }) }));
  t.match(save(bad, 'ipv4', 'nat').join('\n'), /--set-xmark 0x4000\/0x4000/, 'an impossible bit falls back to 14');
  t.match(bad.findings, [{ severity: 'warning', fix: 'config', reason: 'InvalidMasqueradeBit' }]);
});

t.test('a Service with two LoadBalancer IPs gets rules for both', async (t) => {
  const s: ServiceInput = { ...web, status: { loadBalancer: { ingress: [{ ip: '203.0.113.11' }, { ip: '203.0.113.10' }] } } };
  const dests = save(render(world([s])), 'ipv4', 'nat')
    .filter((l) => l.includes('DNAT'))
    .map((l) => /-d (\S+)/.exec(l)?.[1]);
  t.same(dests, ['203.0.113.10/32', '203.0.113.11/32', '203.0.113.10/32', '203.0.113.11/32'], 'host chain then pods chain, each IP once, sorted');
});

t.test('the rules follow the Service: a changed cluster IP or LoadBalancer IP leaves nothing of the old one', async (t) => {
  const before = save(render(world([web])), 'ipv4', 'nat').join('\n');
  const moved: ServiceInput = { ...web, spec: { ...web.spec, clusterIP: '10.96.0.99', clusterIPs: ['10.96.0.99'] }, status: { loadBalancer: { ingress: [{ ip: '203.0.113.77' }] } } };
  const after = save(render(world([moved])), 'ipv4', 'nat').join('\n');
  t.match(before, /203\.0\.113\.10/);
  t.notMatch(after, /203\.0\.113\.10|10\.96\.0\.20/, 'old addresses gone');
  t.match(after, /-d 203\.0\.113\.77\/32 .* --to-destination 10\.96\.0\.99:80/);
  const gone = render(world([]));
  t.same(save(gone, 'ipv4', 'nat').filter((l) => l.startsWith('-A NODENET')), [], 'a deleted Service leaves empty chains');
});

t.test('turned off: empty nat, so applying it removes the chains and jumps', async (t) => {
  const state = render(world([web], { config: config({ externalCluster: false }) }));
  t.same(state.tables.find((x) => x.table === 'nat'), { family: 'ipv4', table: 'nat', chains: [], jumps: [] });
  t.same(state.findings, []);
});

t.test('the OUTPUT jump is limited to locally sourced packets and both chains are owned', async (t) => {
  const nat = render(world([web])).tables.find((x) => x.table === 'nat')!;
  t.same(nat.chains.map((c) => c.name), [CHAINS.externalHost, CHAINS.externalPods]);
  t.same(nat.jumps.map((j) => j.chain), ['PREROUTING', 'OUTPUT']);
});
