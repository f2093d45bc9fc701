// loadBalancerSourceRanges: a DNAT to the cluster IP would bypass kube-proxy's check of the ranges
// on the LoadBalancer IP, so only sources inside them are redirected. A pod must be both in the pod
// CIDR and in a range: each overlapping pair yields the narrower prefix. The node's own traffic is
// matched against the ranges themselves. Anything not redirected is left to kube-proxy.
import t from 'tap';

import type { IpFamily } from '../../lib/kernel/netfilter/index.js';
import { render, type DesiredState, type FixesConfig, type ModelInput, type ServiceInput } from '../../lib/model/index.js';
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

const ranged = (ranges: string[], extra: Partial<ServiceInput['spec']> = {}): ServiceInput => ({ ...web, spec: { ...web.spec, loadBalancerSourceRanges: ranges, ...extra } });
const sources = (state: DesiredState, chain: 'PODS' | 'HOST', family: IpFamily = 'ipv4') =>
  save(state, family, 'nat')
    .filter((l) => l.startsWith(`-A NODENET-EXTERNAL-${chain}`) && l.includes('DNAT'))
    .map((l) => /-s (\S+)/.exec(l)?.[1] ?? 'any');

t.test('no ranges: every pod, and any local source', async (t) => {
  const state = render(world([web]));
  t.same(sources(state, 'PODS'), ['10.244.1.0/24']);
  t.same(sources(state, 'HOST'), ['any']);
});

t.test('a range wider than the pod CIDR: the pod CIDR (the narrower) is matched', async (t) => {
  const state = render(world([ranged(['10.0.0.0/8'])]));
  t.same(sources(state, 'PODS'), ['10.244.1.0/24']);
  t.same(sources(state, 'HOST'), ['10.0.0.0/8']);
  t.same(state.findings, []);
});

t.test('a range inside the pod CIDR: only that range is matched', async (t) => {
  const state = render(world([ranged(['10.244.1.128/25'])]));
  t.same(sources(state, 'PODS'), ['10.244.1.128/25']);
  t.same(sources(state, 'HOST'), ['10.244.1.128/25']);
});

t.test('a range disjoint from the pod CIDR: no pod is redirected, and that is said', async (t) => {
  const state = render(world([ranged(['192.168.0.0/16'])]));
  t.same(sources(state, 'PODS'), []);
  t.same(sources(state, 'HOST'), ['192.168.0.0/16'], 'the node may still be inside it');
  t.match(state.findings, [{ severity: 'info', reason: 'SourceRangesExcludePods', service: { namespace: 'shop', name: 'web' } }]);
});

t.test('several ranges: one rule pair per distinct source, prefixes covered by a wider one dropped', async (t) => {
  const state = render(world([ranged(['172.16.0.0/12', '10.244.1.64/26', ' 10.244.0.0/16 ', '10.0.0.0/8'])]));
  t.same(sources(state, 'PODS'), ['10.244.1.0/24'], '/24 covers the /26; 172.16/12 holds no pod');
  t.same(sources(state, 'HOST'), ['10.0.0.0/8', '172.16.0.0/12']);
  const state2 = render(world([ranged(['10.244.1.192/26', '10.244.1.0/26'])]));
  t.same(sources(state2, 'PODS'), ['10.244.1.0/26', '10.244.1.192/26'], 'two disjoint slices of the pod CIDR');
  t.equal(save(state2, 'ipv4', 'nat').filter((l) => l.includes('PODS -s')).length, 4, 'MARK and DNAT for each');
});

t.test('several pod CIDRs against several ranges', async (t) => {
  const cfg = config({ podCidrs: { ipv4: ['10.244.0.0/16', '10.250.0.0/16'] } });
  const state = render(world([ranged(['10.244.5.0/24', '10.250.0.0/15', '10.0.0.0/16'])], { config: cfg }));
  t.same(sources(state, 'PODS'), ['10.244.5.0/24', '10.250.0.0/16']);
});

t.test('0.0.0.0/0 admits every pod', async (t) => {
  t.same(sources(render(world([ranged(['0.0.0.0/0'])])), 'PODS'), ['10.244.1.0/24']);
});

t.test('a range that does not parse narrows, never widens', async (t) => {
  const state = render(world([ranged(['10.244.1.0/33', 'nope'])]));
  t.same(sources(state, 'PODS'), [], 'no valid range: no source is redirected');
  t.same(sources(state, 'HOST'), []);
  t.same(state.findings.filter((f) => f.reason === 'InvalidSourceRange').length, 2);
  const mixed = render(world([ranged(['nope', '10.244.1.0/25'])]));
  t.same(sources(mixed, 'PODS'), ['10.244.1.0/25']);
});

t.test('ranges of one family only: the other family\'s LoadBalancer IP is not redirected', async (t) => {
  const s: ServiceInput = {
    ...ranged(['10.0.0.0/8'], { clusterIPs: ['10.96.0.20', 'fd00:10:96::20'] }),
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: '2001:db8::10' }] } },
  };
  const state = render(world([s], { config: config({ families: ['ipv4', 'ipv6'] }), node: { metadata: { name: 'n' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } } }));
  t.same(sources(state, 'PODS', 'ipv6'), []);
  t.same(sources(state, 'HOST', 'ipv6'), []);
  t.same(sources(state, 'PODS', 'ipv4'), ['10.244.1.0/24']);
  t.match(state.findings, [{ reason: 'SourceRangesExcludePods' }]);
});

t.test('spec.externalIPs are not restricted by the ranges (as in kube-proxy)', async (t) => {
  const s = ranged(['192.168.0.0/16'], { externalIPs: ['198.51.100.7'] });
  const state = render(world([s], { config: config({ externalIPs: true }) }));
  const pods = save(state, 'ipv4', 'nat').filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS') && l.includes('DNAT'));
  t.same(pods.map((l) => /-s (\S+) -d (\S+)/.exec(l)?.slice(1)), [['10.244.1.0/24', '198.51.100.7/32']], 'only the external IP, for every pod');
});

t.test('an address that is both a LoadBalancer IP and an external IP keeps the ranges', async (t) => {
  const s = ranged(['10.244.1.0/25'], { externalIPs: ['203.0.113.10'] });
  const state = render(world([s], { config: config({ externalIPs: true }) }));
  t.same(sources(state, 'PODS'), ['10.244.1.0/25']);
});
