// Which addresses of a Service are redirected: LoadBalancer ingress IPs (not ipMode Proxy, not
// hostname-only), spec.externalIPs only when opted in (CVE-2020-8554), never for a headless
// Service, and never an empty or unparsable address.
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

const withIngress = (ingress: NonNullable<NonNullable<ServiceInput['status']>['loadBalancer']>['ingress']): ServiceInput => ({ ...web, status: { loadBalancer: { ingress } } });
const dests = (state: DesiredState) => [...new Set(save(state, 'ipv4', 'nat').filter((l) => l.includes('DNAT')).map((l) => /-d (\S+)/.exec(l)?.[1]))];
const reasons = (state: DesiredState) => state.findings.map((f) => f.reason);

t.test('hostname-only ingress: no rule, in particular none with an empty address', async (t) => {
  const state = render(world([withIngress([{ hostname: 'lb-1234.elb.example.com' }])]));
  t.same(dests(state), []);
  t.same(save(state, 'ipv4', 'nat').filter((l) => l.startsWith('-A NODENET')), []);
  t.same(reasons(state), ['HostnameOnlyIngress']);
  t.match(state.findings[0], { severity: 'info', service: { namespace: 'shop', name: 'web' } });
  t.match(state.findings[0]?.message, /lb-1234\.elb\.example\.com/);
});

t.test('an empty ip, with or without a hostname, is skipped', async (t) => {
  const state = render(world([withIngress([{ ip: '', hostname: 'x.example' }, { ip: '' }, {}, { ip: '203.0.113.10' }])]));
  t.same(dests(state), ['203.0.113.10/32']);
  t.notMatch(JSON.stringify(state.tables), /"destination":\{"value":""/);
});

t.test('ipMode Proxy is left to the load balancer; ipMode VIP is served', async (t) => {
  const state = render(world([withIngress([{ ip: '203.0.113.10', ipMode: 'Proxy' }, { ip: '203.0.113.11', ipMode: 'VIP' }])]));
  t.same(dests(state), ['203.0.113.11/32']);
  t.same(reasons(state), ['IngressIPModeProxy']);
  t.match(state.findings[0]?.message, /203\.0\.113\.10 has ipMode Proxy/);
});

t.test('headless (clusterIP None or empty): nothing to DNAT to', async (t) => {
  for (const clusterIP of ['None', '']) {
    const s: ServiceInput = { ...web, spec: { ...web.spec, clusterIP, clusterIPs: clusterIP ? [clusterIP] : [] } };
    const state = render(world([s]));
    t.same(dests(state), [], JSON.stringify(clusterIP));
    t.same(reasons(state), ['Headless']);
  }
  const quiet = render(world([{ metadata: { namespace: 'a', name: 'h' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } }]));
  t.same(quiet.findings, [], 'a headless Service with no external address is not worth a finding');
});

t.test('spec.externalIPs: ignored (with a note) unless RULE_EXTERNAL_IPS_ENABLE', async (t) => {
  const s: ServiceInput = { metadata: { namespace: 'shop', name: 'legacy' }, spec: { type: 'ClusterIP', clusterIP: '10.96.0.30', externalIPs: ['198.51.100.8', '198.51.100.7'], ports: [{ port: 80 }] } };
  const off = render(world([s]));
  t.same(dests(off), []);
  t.same(reasons(off), ['ExternalIPsNotEnabled']);
  t.match(off.findings[0]?.message, /RULE_EXTERNAL_IPS_ENABLE=true.*CVE-2020-8554/);
  const on = render(world([s], { config: config({ externalIPs: true }) }));
  t.same(dests(on), ['198.51.100.7/32', '198.51.100.8/32'], 'any Service type, both addresses, sorted');
  t.same(on.findings, []);
});

t.test('ingress of a Service that is no longer a LoadBalancer is ignored', async (t) => {
  const s: ServiceInput = { ...web, spec: { ...web.spec, type: 'ClusterIP' } };
  t.same(dests(render(world([s]))), []);
});

t.test('ExternalName Services are never looked at', async (t) => {
  const s: ServiceInput = { metadata: { namespace: 'a', name: 'x' }, spec: { type: 'ExternalName', externalIPs: ['198.51.100.9'] } };
  const state = render(world([s], { config: config({ externalIPs: true }) }));
  t.same(dests(state), []);
  t.same(state.findings, []);
});

t.test('an address that does not parse is reported and skipped; the others are served', async (t) => {
  const state = render(world([withIngress([{ ip: '203.0.113.300' }, { ip: 'fe80::1%eth0' }, { ip: '203.0.113.10' }])]));
  t.same(dests(state), ['203.0.113.10/32']);
  t.same(reasons(state), ['InvalidAddress', 'InvalidAddress']);
});

t.test('ports that cannot be matched are reported; the others are served', async (t) => {
  const s: ServiceInput = { ...web, spec: { ...web.spec, ports: [{ name: 'x', protocol: 'ICMP', port: 1 }, { name: 'y', port: 0 }, { name: 'z', port: 70000 }, { name: 'ok', port: 80 }] } };
  const state = render(world([s]));
  t.equal(save(state, 'ipv4', 'nat').filter((l) => l.includes('DNAT')).length, 2, 'port 80 for pods and the node');
  t.same(reasons(state), ['UnsupportedPort', 'UnsupportedPort', 'UnsupportedPort']);
});
