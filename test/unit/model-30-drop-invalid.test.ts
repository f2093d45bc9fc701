// drop-INVALID: an owned filter chain jumped to first from INPUT, in every proxy mode and family;
// with nf_conntrack_tcp_be_liberal the rule is still installed but said to be redundant, without
// it the sysctl is offered as the alternative fix.
import t from 'tap';

import { CHAINS, render, type FixesConfig, type ModelInput, type ServiceInput } from '../../lib/model/index.js';
import { save } from '../helpers/rendered.js';

const config = (over: Partial<FixesConfig> = {}): FixesConfig => ({
  dropInvalidInput: true,
  externalCluster: false,
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

const expected = [
  '-A INPUT -m comment --comment "nodenet drop-invalid: no RST for out-of-window packets of pods" -j NODENET-DROP-INVALID',
  ':NODENET-DROP-INVALID',
  '-A NODENET-DROP-INVALID -m comment --comment "nodenet: conntrack INVALID, the node would answer with a RST" -m conntrack --ctstate INVALID -j DROP',
];

t.test('the rule and its jump, in every proxy mode and family', async (t) => {
  for (const proxyMode of ['ipvs', 'iptables', 'nftables'] as const) {
    const state = render(world([web], { config: config({ families: ['ipv4', 'ipv6'] }), facts: { proxyMode, tcpBeLiberal: false } }));
    for (const family of ['ipv4', 'ipv6'] as const) {
      t.same(save(state, family, 'filter'), expected, `${proxyMode} ${family}`);
      t.same(save(state, family, 'nat'), [], 'nothing else');
      t.same(save(state, family, 'raw'), []);
    }
    t.notOk(state.findings.some((f) => f.severity === 'warning'), 'never refused');
  }
});

t.test('its jump is declared first in INPUT, so apply inserts it ahead of the other fixes\' jumps', async (t) => {
  const state = render(world([web], { config: config({ notrackDns: true }), facts: { proxyMode: 'ipvs', tcpBeLiberal: false } }));
  const filter = state.tables.find((x) => x.table === 'filter')!;
  const input = filter.jumps.filter((j) => j.chain === 'INPUT').map((j) => (j.rule.target.kind === 'jump' ? j.rule.target.chain : ''));
  t.same(input, [CHAINS.dropInvalid, CHAINS.dnsAccept]);
});

t.test('nf_conntrack_tcp_be_liberal=1: installed anyway, and said to be redundant', async (t) => {
  const state = render(world([], { facts: { proxyMode: 'ipvs', tcpBeLiberal: true } }));
  t.same(save(state, 'ipv4', 'filter'), expected, 'the user asked for it');
  t.equal(state.findings.length, 1);
  t.match(state.findings[0], { severity: 'info', fix: 'drop-invalid', reason: 'RedundantWithTcpBeLiberal' });
  t.match(state.findings[0]?.message, /nf_conntrack_tcp_be_liberal=1 .* redundant/);
  t.match(state.findings[0]?.message, /RULE_DROP_INVALID_INPUT_ENABLE/);
});

t.test('nf_conntrack_tcp_be_liberal=0 (or unreadable): the sysctl is offered as the alternative', async (t) => {
  for (const [liberal, said] of [[false, 'is 0'], [null, 'is unreadable']] as const) {
    const state = render(world([], { facts: { proxyMode: 'iptables', tcpBeLiberal: liberal } }));
    t.equal(state.findings.length, 1);
    t.match(state.findings[0], { severity: 'info', fix: 'drop-invalid', reason: 'TcpBeLiberalAlternative' });
    t.match(state.findings[0]?.message, new RegExp(`nf_conntrack_tcp_be_liberal ${said} .*setting it to 1 .* alternative`));
  }
});

t.test('turned off: an empty filter table and no findings, whatever the sysctl says', async (t) => {
  for (const tcpBeLiberal of [true, false, null]) {
    const state = render(world([], { config: config({ dropInvalidInput: false }), facts: { proxyMode: 'ipvs', tcpBeLiberal } }));
    t.same(state.tables.find((x) => x.table === 'filter'), { family: 'ipv4', table: 'filter', chains: [], jumps: [] });
    t.same(state.findings, []);
  }
});
