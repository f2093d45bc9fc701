// The order tables are applied in: untracked DNS needs filter's ACCEPTs, so while NOTRACK DNS is on
// filter goes before raw (the ACCEPTs are in before the NOTRACK rules) and when it goes off raw
// goes before filter (the NOTRACK rules are out before the ACCEPTs). Checked by replaying every
// transition table by table and looking at the kernel's state between commits.
import t from 'tap';

import type { IpFamily, TableState } from '../../lib/kernel/netfilter/index.js';
import { applyOrder, CHAINS, keepsDnsAccept, render, type DesiredState, type ModelInput, type ProxyMode } from '../../lib/model/index.js';

const world = (notrackDns: boolean, proxyMode: ProxyMode = 'ipvs', endpoint = '10.244.1.5'): ModelInput => ({
  config: {
    dropInvalidInput: true,
    externalCluster: true,
    externalIPs: false,
    notrackDns,
    dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
    families: ['ipv4', 'ipv6'],
    podCidrs: {},
    masqueradeBit: 14,
  },
  facts: { proxyMode, tcpBeLiberal: false },
  services: [{ metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } }],
  dnsEndpointSlices: [
    { metadata: { namespace: 'kube-system', name: 'a', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv4', endpoints: [{ addresses: [endpoint] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
    { metadata: { namespace: 'kube-system', name: 'b', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv6', endpoints: [{ addresses: ['fd00:10:244:1::5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
  ],
  node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
});

const names = (steps: TableState[]) => steps.map((s) => `${s.family} ${s.table}`);

t.test('while NOTRACK DNS is on: filter, then raw, per family', async (t) => {
  const next = render(world(true));
  t.same(names(applyOrder(next)), ['ipv4 filter', 'ipv4 raw', 'ipv4 nat', 'ipv6 filter', 'ipv6 raw', 'ipv6 nat']);
  t.ok(keepsDnsAccept(next, 'ipv4'));
});

t.test('when it is off, or refused outside IPVS: raw, then filter', async (t) => {
  for (const next of [render(world(false)), render(world(true, 'iptables'))]) {
    t.same(names(applyOrder(next)), ['ipv4 raw', 'ipv4 filter', 'ipv4 nat', 'ipv6 raw', 'ipv6 filter', 'ipv6 nat']);
    t.notOk(keepsDnsAccept(next, 'ipv6'));
  }
});

t.test('every table of the state, each once', async (t) => {
  const next = render(world(true));
  const steps = applyOrder(next);
  t.equal(steps.length, next.tables.length);
  t.same(new Set(steps), new Set(next.tables));
});

// A kernel that commits one table at a time: untracked DNS is dropped whenever raw untracks
// something that filter does not accept.
type Kernel = Map<string, TableState>;
const key = (family: IpFamily, table: string) => `${family} ${table}`;

function droppingDns(kernel: Kernel, family: IpFamily): boolean {
  const raw = kernel.get(key(family, 'raw'));
  const filter = kernel.get(key(family, 'filter'));
  const untracks = raw?.chains.some((c) => c.name === CHAINS.dnsNotrack && c.rules.length > 0) ?? false;
  const accepts = filter?.chains.some((c) => c.name === CHAINS.dnsAccept && c.rules.length === 2) ?? false;
  return untracks && !accepts;
}

function replay(from: DesiredState | null, steps: TableState[]): string[] {
  const kernel: Kernel = new Map();
  for (const s of from?.tables ?? []) kernel.set(key(s.family, s.table), s);
  const problems: string[] = [];
  for (const s of steps) {
    kernel.set(key(s.family, s.table), s);
    for (const family of ['ipv4', 'ipv6'] as const) if (droppingDns(kernel, family)) problems.push(`after ${key(s.family, s.table)}: ${family} DNS untracked but not accepted`);
  }
  return problems;
}

const transitions: Array<[string, DesiredState | null, DesiredState]> = [
  ['off -> on', render(world(false)), render(world(true))],
  ['on -> off', render(world(true)), render(world(false))],
  ['on -> refused (kube-proxy now in iptables mode)', render(world(true)), render(world(true, 'iptables'))],
  ['refused -> on', render(world(true, 'nftables')), render(world(true))],
  ['on -> on, endpoints changed', render(world(true, 'ipvs', '10.244.1.5')), render(world(true, 'ipvs', '10.244.2.6'))],
  ['unknown (after a restart) -> on', null, render(world(true))],
  ['unknown (after a restart) -> off', null, render(world(false))],
];

for (const [name, from, next] of transitions) {
  t.test(`${name}: DNS is never untracked without its ACCEPTs between commits`, async (t) => {
    t.same(replay(from, applyOrder(next)), []);
  });
}

t.test('the replay does catch the wrong order (so the checks above can fail)', async (t) => {
  const on = render(world(true));
  const off = render(world(false));
  const first = (s: DesiredState, table: string) => [...s.tables].sort((a, b) => Number(b.table === table) - Number(a.table === table));
  t.not(replay(on, first(off, 'filter')).length, 0, 'filter before raw when turning off drops DNS');
  t.not(replay(off, first(on, 'raw')).length, 0, 'raw before filter when turning on drops DNS');
});
