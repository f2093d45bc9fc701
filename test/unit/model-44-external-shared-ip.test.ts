// Services sharing one LoadBalancer IP (MetalLB's allow-shared-ip) each get their own traffic:
// rules match protocol and port, so each port goes to its own Service's cluster IP.
import t from 'tap';

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

const world = (services: ServiceInput[], over: Partial<ModelInput> = {}): ModelInput => ({
  config: config(),
  facts: { proxyMode: 'ipvs', tcpBeLiberal: null },
  services,
  dnsEndpointSlices: [],
  node: { metadata: { name: 'node-1' }, spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] } },
  ...over,
});

const shared = (name: string, clusterIP: string, ports: Array<{ name?: string; protocol?: string; port: number }>): ServiceInput => ({
  metadata: { namespace: 'shop', name },
  spec: { type: 'LoadBalancer', clusterIP, clusterIPs: [clusterIP], ports },
  status: { loadBalancer: { ingress: [{ ip: '203.0.113.50' }] } },
});

const dnats = (state: DesiredState) =>
  save(state, 'ipv4', 'nat')
    .filter((l) => l.startsWith('-A NODENET-EXTERNAL-PODS') && l.includes('DNAT'))
    .map((l) => `${/-p (\w+)/.exec(l)?.[1]}/${/--dport (\d+)/.exec(l)?.[1] ?? 'sctp'} -> ${/--to-destination (\S+)/.exec(l)?.[1]} (${/--comment "([^"]+)"/.exec(l)?.[1]})`);

t.test('one IP, different ports: each to its own cluster IP', async (t) => {
  const state = render(world([shared('web', '10.96.0.21', [{ name: 'http', port: 80 }]), shared('api', '10.96.0.22', [{ name: 'https', port: 443 }])]));
  t.same(dnats(state), ['tcp/443 -> 10.96.0.22:443 (shop/api:https)', 'tcp/80 -> 10.96.0.21:80 (shop/web:http)']);
  t.same(state.findings, []);
});

t.test('one IP, one port number, TCP for one Service and UDP for another (DNS over both)', async (t) => {
  const state = render(world([shared('dns-tcp', '10.96.0.31', [{ protocol: 'TCP', port: 53 }]), shared('dns-udp', '10.96.0.32', [{ protocol: 'UDP', port: 53 }])]));
  t.same(dnats(state), ['tcp/53 -> 10.96.0.31:53 (shop/dns-tcp)', 'udp/53 -> 10.96.0.32:53 (shop/dns-udp)']);
  t.same(state.findings, []);
});

t.test('two Services claiming the same IP, protocol and port: warned, the first by namespace/name wins', async (t) => {
  const a = shared('a', '10.96.0.41', [{ port: 80 }]);
  const z = shared('z', '10.96.0.42', [{ port: 80 }]);
  const state = render(world([z, a]));
  t.same(dnats(state), ['tcp/80 -> 10.96.0.41:80 (shop/a)', 'tcp/80 -> 10.96.0.42:80 (shop/z)'], 'both written, a first so a gets the traffic');
  t.match(state.findings, [{ severity: 'warning', reason: 'SharedAddressConflict', service: { namespace: 'shop', name: 'z' } }]);
  t.match(state.findings[0]?.message, /shop\/z and shop\/a both claim 203\.0\.113\.50 TCP\/80; traffic goes to shop\/a's cluster IP/);
});
