// The golden test of issue 4: for each fix, a realistic dual-stack world rendered by lib/model and
// applied by netfilter.apply (in applyOrder's order) gives the same iptables-legacy-save output,
// for both families, as the expected rules written the iptables way and loaded with
// iptables-legacy-restore; the dump restores; an unchanged world commits nothing; a changed world
// and a fix turned off leave nothing behind.
import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import type { IpFamily } from '../../lib/kernel/netfilter/index.js';
import { applyOrder, render, type FixesConfig, type ModelInput, type ProxyMode, type ServiceInput } from '../../lib/model/index.js';

import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { iptablesRestore, iptablesSave, legacyTableNames } from '../helpers/witness.js';

const FAMILIES = ['ipv4', 'ipv6'] as const;
const TABLES = ['filter', 'nat', 'raw'] as const;

const services: ServiceInput[] = [
  {
    metadata: { namespace: 'shop', name: 'web' },
    spec: {
      type: 'LoadBalancer',
      clusterIP: '10.96.0.20',
      clusterIPs: ['10.96.0.20', 'fd00:10:96::20'],
      ipFamilies: ['IPv4', 'IPv6'],
      ports: [{ name: 'https', protocol: 'TCP', port: 443 }, { name: 'http', protocol: 'TCP', port: 80 }],
    },
    status: { loadBalancer: { ingress: [{ ip: '2001:db8::10' }, { ip: '203.0.113.10' }, { hostname: 'web.lb.example' }] } },
  },
  {
    // MetalLB: the same IP as shop/web, other ports and protocols.
    metadata: { namespace: 'shop', name: 'voice' },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.0.30', clusterIPs: ['10.96.0.30'], ports: [{ name: 'sip', protocol: 'UDP', port: 5060 }, { name: 'sig', protocol: 'SCTP', port: 3868 }] },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } },
  },
  {
    metadata: { namespace: 'shop', name: 'admin' },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.0.40', clusterIPs: ['10.96.0.40'], loadBalancerSourceRanges: ['192.168.0.0/16', '10.244.1.128/25'], ports: [{ name: 'https', port: 8443 }] },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.20' }, { ip: '203.0.113.21', ipMode: 'Proxy' }] } },
  },
  {
    metadata: { namespace: 'legacy', name: 'old' },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.50', clusterIPs: ['10.96.0.50'], externalIPs: ['198.51.100.7'], ports: [{ port: 80 }] },
  },
  {
    metadata: { namespace: 'kube-system', name: 'kube-dns' },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
      ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }, { name: 'metrics', protocol: 'TCP', port: 9153 }],
    },
  },
];

const dnsSlice = (name: string, addressType: string, addresses: string[]) => ({
  metadata: { namespace: 'kube-system', name, labels: { 'kubernetes.io/service-name': 'kube-dns' } },
  addressType,
  endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
  ports: [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }, { name: 'metrics', protocol: 'TCP', port: 9153 }],
});

function world(fixes: Partial<FixesConfig>, proxyMode: ProxyMode = 'ipvs', svcs: ServiceInput[] = services): ModelInput {
  return {
    config: {
      dropInvalidInput: false,
      externalCluster: false,
      externalIPs: true,
      notrackDns: false,
      dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
      families: ['ipv4', 'ipv6'],
      podCidrs: {},
      masqueradeBit: 14,
      ...fixes,
    },
    facts: { proxyMode, tcpBeLiberal: false },
    services: svcs,
    dnsEndpointSlices: [dnsSlice('kube-dns-v4', 'IPv4', ['10.244.2.7', '10.244.1.5']), dnsSlice('kube-dns-v6', 'IPv6', ['fd00:10:244:1::5'])],
    node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
  };
}

// ---- the expected rules, as someone would write them for iptables-restore ---------------------

const DROP_JUMP = '-m comment --comment "nodenet drop-invalid: no RST for out-of-window packets of pods" -j NODENET-DROP-INVALID';
const DNS_ACCEPT_JUMP = '-m comment --comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked" -j NODENET-DNS-ACCEPT';
const DNS_NOTRACK_JUMP = '-m comment --comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack" -j NODENET-DNS-NOTRACK';
const PODS_JUMP = '-m comment --comment "nodenet external-cluster: pods reach external IPs through cluster IPs" -j NODENET-EXTERNAL-PODS';
const HOST_JUMP = '-m comment --comment "nodenet external-cluster: the node reaches external IPs through cluster IPs" -m addrtype --src-type LOCAL -j NODENET-EXTERNAL-HOST';

// filter holds drop-INVALID, NOTRACK DNS's ACCEPTs, or both (drop-INVALID's jump first in INPUT).
function filter(fixes: { drop?: boolean; dns?: boolean }): string {
  const lines = ['*filter'];
  if (fixes.dns) lines.push(':NODENET-DNS-ACCEPT - [0:0]');
  if (fixes.drop) lines.push(':NODENET-DROP-INVALID - [0:0]', `-A INPUT ${DROP_JUMP}`);
  if (fixes.dns) lines.push(`-A INPUT ${DNS_ACCEPT_JUMP}`, `-A FORWARD ${DNS_ACCEPT_JUMP}`, `-A OUTPUT ${DNS_ACCEPT_JUMP}`);
  if (fixes.drop) lines.push('-A NODENET-DROP-INVALID -m comment --comment "nodenet: conntrack INVALID, the node would answer with a RST" -m conntrack --ctstate INVALID -j DROP');
  if (fixes.dns) {
    lines.push(
      '-A NODENET-DNS-ACCEPT -p udp -m comment --comment "nodenet: DNS queries nodenet took out of conntrack" -m conntrack --ctstate UNTRACKED -m udp --dport 53 -j ACCEPT',
      '-A NODENET-DNS-ACCEPT -p udp -m comment --comment "nodenet: DNS replies nodenet took out of conntrack" -m conntrack --ctstate UNTRACKED -m udp --sport 53 -j ACCEPT',
    );
  }
  return `${lines.join('\n')}\nCOMMIT\n`;
}

// kube-proxy's KUBE-MARK-MASQ does exactly this MARK; nodenet writes it in place of the jump.
function redirect(chain: string, match: string, to: string): string {
  return `-A ${chain} ${match} -j MARK --or-mark 0x4000\n-A ${chain} ${match} -j DNAT --to-destination ${to}\n`;
}

const externalV4 =
  `*nat
:NODENET-EXTERNAL-HOST - [0:0]
:NODENET-EXTERNAL-PODS - [0:0]
-A PREROUTING ${PODS_JUMP}
-A OUTPUT ${HOST_JUMP}
` +
  redirect('NODENET-EXTERNAL-HOST', '-d 198.51.100.7/32 -p tcp -m comment --comment "legacy/old" -m tcp --dport 80', '10.96.0.50:80') +
  redirect('NODENET-EXTERNAL-HOST', '-s 10.244.1.128/25 -d 203.0.113.20/32 -p tcp -m comment --comment "shop/admin:https" -m tcp --dport 8443', '10.96.0.40:8443') +
  redirect('NODENET-EXTERNAL-HOST', '-s 192.168.0.0/16 -d 203.0.113.20/32 -p tcp -m comment --comment "shop/admin:https" -m tcp --dport 8443', '10.96.0.40:8443') +
  redirect('NODENET-EXTERNAL-HOST', '-d 203.0.113.10/32 -p sctp -m comment --comment "shop/voice:sig" -m sctp --dport 3868', '10.96.0.30:3868') +
  redirect('NODENET-EXTERNAL-HOST', '-d 203.0.113.10/32 -p udp -m comment --comment "shop/voice:sip" -m udp --dport 5060', '10.96.0.30:5060') +
  redirect('NODENET-EXTERNAL-HOST', '-d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80', '10.96.0.20:80') +
  redirect('NODENET-EXTERNAL-HOST', '-d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:https" -m tcp --dport 443', '10.96.0.20:443') +
  redirect('NODENET-EXTERNAL-PODS', '-s 10.244.1.0/24 -d 198.51.100.7/32 -p tcp -m comment --comment "legacy/old" -m tcp --dport 80', '10.96.0.50:80') +
  redirect('NODENET-EXTERNAL-PODS', '-s 10.244.1.128/25 -d 203.0.113.20/32 -p tcp -m comment --comment "shop/admin:https" -m tcp --dport 8443', '10.96.0.40:8443') +
  redirect('NODENET-EXTERNAL-PODS', '-s 10.244.1.0/24 -d 203.0.113.10/32 -p sctp -m comment --comment "shop/voice:sig" -m sctp --dport 3868', '10.96.0.30:3868') +
  redirect('NODENET-EXTERNAL-PODS', '-s 10.244.1.0/24 -d 203.0.113.10/32 -p udp -m comment --comment "shop/voice:sip" -m udp --dport 5060', '10.96.0.30:5060') +
  redirect('NODENET-EXTERNAL-PODS', '-s 10.244.1.0/24 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80', '10.96.0.20:80') +
  redirect('NODENET-EXTERNAL-PODS', '-s 10.244.1.0/24 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web:https" -m tcp --dport 443', '10.96.0.20:443') +
  'COMMIT\n';

const externalV6 =
  `*nat
:NODENET-EXTERNAL-HOST - [0:0]
:NODENET-EXTERNAL-PODS - [0:0]
-A PREROUTING ${PODS_JUMP}
-A OUTPUT ${HOST_JUMP}
` +
  redirect('NODENET-EXTERNAL-HOST', '-d 2001:db8::10/128 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80', '[fd00:10:96::20]:80') +
  redirect('NODENET-EXTERNAL-HOST', '-d 2001:db8::10/128 -p tcp -m comment --comment "shop/web:https" -m tcp --dport 443', '[fd00:10:96::20]:443') +
  redirect('NODENET-EXTERNAL-PODS', '-s fd00:10:244:1::/64 -d 2001:db8::10/128 -p tcp -m comment --comment "shop/web:http" -m tcp --dport 80', '[fd00:10:96::20]:80') +
  redirect('NODENET-EXTERNAL-PODS', '-s fd00:10:244:1::/64 -d 2001:db8::10/128 -p tcp -m comment --comment "shop/web:https" -m tcp --dport 443', '[fd00:10:96::20]:443') +
  'COMMIT\n';

const notrack = (lines: string) => `*raw
:NODENET-DNS-NOTRACK - [0:0]
-A PREROUTING ${DNS_NOTRACK_JUMP}
-A OUTPUT ${DNS_NOTRACK_JUMP}
${lines}COMMIT
`;

const notrackV4 = notrack(`-A NODENET-DNS-NOTRACK -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns cluster IP" -m udp --dport 53 -j CT --notrack
-A NODENET-DNS-NOTRACK -d 10.244.1.5/32 -p udp -m comment --comment "kube-system/kube-dns endpoint" -m udp --dport 53 -j CT --notrack
-A NODENET-DNS-NOTRACK -s 10.244.1.5/32 -p udp -m comment --comment "kube-system/kube-dns endpoint reply" -m udp --sport 53 -j CT --notrack
-A NODENET-DNS-NOTRACK -d 10.244.2.7/32 -p udp -m comment --comment "kube-system/kube-dns endpoint" -m udp --dport 53 -j CT --notrack
-A NODENET-DNS-NOTRACK -s 10.244.2.7/32 -p udp -m comment --comment "kube-system/kube-dns endpoint reply" -m udp --sport 53 -j CT --notrack
`);

const notrackV6 = notrack(`-A NODENET-DNS-NOTRACK -d fd00:10:96::a/128 -p udp -m comment --comment "kube-system/kube-dns cluster IP" -m udp --dport 53 -j CT --notrack
-A NODENET-DNS-NOTRACK -d fd00:10:244:1::5/128 -p udp -m comment --comment "kube-system/kube-dns endpoint" -m udp --dport 53 -j CT --notrack
-A NODENET-DNS-NOTRACK -s fd00:10:244:1::5/128 -p udp -m comment --comment "kube-system/kube-dns endpoint reply" -m udp --sport 53 -j CT --notrack
`);

interface Golden {
  name: string;
  fixes: Partial<FixesConfig>;
  expected: Record<IpFamily, string>;
  /** One line per family that must be in nodenet's dump, so the report shows a rule of each fix. */
  example: Record<IpFamily, RegExp>;
}

const goldens: Golden[] = [
  {
    name: 'drop-INVALID',
    fixes: { dropInvalidInput: true },
    expected: { ipv4: filter({ drop: true }), ipv6: filter({ drop: true }) },
    example: { ipv4: /^-A NODENET-DROP-INVALID .*-m conntrack --ctstate INVALID -j DROP$/m, ipv6: /^-A INPUT .*-j NODENET-DROP-INVALID$/m },
  },
  {
    name: 'External-IP to Cluster-IP',
    fixes: { externalCluster: true },
    expected: { ipv4: externalV4, ipv6: externalV6 },
    example: {
      ipv4: /^-A NODENET-EXTERNAL-PODS -s 10\.244\.1\.0\/24 -d 203\.0\.113\.10\/32 -p tcp -m comment --comment "shop\/web:http" -m tcp --dport 80 -j DNAT --to-destination 10\.96\.0\.20:80$/m,
      ipv6: /^-A NODENET-EXTERNAL-HOST -d 2001:db8::10\/128 -p tcp .* -j MARK --set-xmark 0x4000\/0x4000$/m,
    },
  },
  {
    name: 'NOTRACK DNS',
    fixes: { notrackDns: true },
    expected: { ipv4: filter({ dns: true }) + notrackV4, ipv6: filter({ dns: true }) + notrackV6 },
    example: { ipv4: /^-A NODENET-DNS-NOTRACK -d 10\.96\.0\.10\/32 -p udp .* -j CT --notrack$/m, ipv6: /^-A NODENET-DNS-ACCEPT -p udp .*--ctstate UNTRACKED -m udp --sport 53 -j ACCEPT$/m },
  },
  {
    name: 'all three fixes together',
    fixes: { dropInvalidInput: true, externalCluster: true, notrackDns: true },
    expected: { ipv4: filter({ drop: true, dns: true }) + externalV4 + notrackV4, ipv6: filter({ drop: true, dns: true }) + externalV6 + notrackV6 },
    example: { ipv4: /^-A INPUT .*-j NODENET-DROP-INVALID\n-A INPUT .*-j NODENET-DNS-ACCEPT$/m, ipv6: /^-A OUTPUT .*-j NODENET-EXTERNAL-HOST$/m },
  },
];

async function applyAll(ns: TestNetns, input: ModelInput): Promise<boolean[]> {
  const committed: boolean[] = [];
  for (const state of applyOrder(render(input))) committed.push((await netfilter.apply(state, { netns: ns.path })).committed);
  return committed;
}

async function saves(ns: TestNetns, family: IpFamily): Promise<string> {
  const out: string[] = [];
  for (const table of TABLES) out.push(await iptablesSave(ns, family, table));
  return out.join('');
}

for (const g of goldens) {
  t.test(`golden, ${g.name}: nodenet's rules save exactly as the same rules written for iptables`, async (t) => {
    const ours = await makeNetns(t);
    const theirs = await makeNetns(t);
    const committed = await applyAll(ours, world(g.fixes));
    t.ok(committed.some(Boolean), 'committed');
    for (const family of FAMILIES) await iptablesRestore(theirs, family, g.expected[family]);

    for (const family of FAMILIES) {
      const mine = await saves(ours, family);
      t.equal(mine, await saves(theirs, family), `${family}: iptables-legacy-save is identical`);
      t.match(mine, g.example[family], `${family}: e.g. ${g.example[family].source}`);
      t.notMatch(mine, family === 'ipv4' ? /NODENET.*[0-9a-f]*::/ : /NODENET.* -[sd] \d+\.\d+\.\d+\.\d+/, 'no address of the other family');
    }

    // Over what iptables wrote, applying the same world changes nothing: the bytes are the same.
    t.same(await applyAll(theirs, world(g.fixes)), committed.map(() => false), 'no commit over iptables\' own rules');
    t.same(await applyAll(ours, world(g.fixes)), committed.map(() => false), 'an unchanged world commits nothing');

    // The dump restores, and restores to the same thing.
    const copy = await makeNetns(t);
    for (const family of FAMILIES) {
      const dump = await saves(ours, family);
      await iptablesRestore(copy, family, dump);
      t.equal(await saves(copy, family), dump, `${family}: the dump restores`);
    }
  });
}

t.test('outside IPVS mode only drop-INVALID is written; nat and raw are never even created', async (t) => {
  for (const mode of ['iptables', 'nftables'] as const) {
    const ns = await makeNetns(t);
    await applyAll(ns, world({ dropInvalidInput: true, externalCluster: true, notrackDns: true }, mode));
    for (const family of FAMILIES) {
      t.same(await legacyTableNames(ns, family), ['filter'], `${mode} ${family}: only filter exists`);
      const ref = await makeNetns(t);
      await iptablesRestore(ref, family, filter({ drop: true }));
      t.equal(await iptablesSave(ns, family, 'filter'), await iptablesSave(ref, family, 'filter'), `${mode} ${family}: just drop-INVALID`);
    }
  }
});

t.test('the kernel follows the world: changed and removed Services, fixes turned off', async (t) => {
  const ns = await makeNetns(t);
  const all = { dropInvalidInput: true, externalCluster: true, notrackDns: true };
  await applyAll(ns, world(all));

  // shop/web gets a new cluster IP and LoadBalancer IP; legacy/old is deleted.
  const changed = services
    .filter((s) => s.metadata.name !== 'old')
    .map((s) => (s.metadata.name === 'web' ? { ...s, spec: { ...s.spec, clusterIP: '10.96.0.21', clusterIPs: ['10.96.0.21', 'fd00:10:96::21'] }, status: { loadBalancer: { ingress: [{ ip: '203.0.113.99' }] } } } : s));
  await applyAll(ns, world(all, 'ipvs', changed));
  const fresh = await makeNetns(t);
  await applyAll(fresh, world(all, 'ipvs', changed));
  for (const family of FAMILIES) {
    const now = await saves(ns, family);
    t.equal(now, await saves(fresh, family), `${family}: as if the world had always been so`);
    t.notMatch(now, /10\.96\.0\.20|fd00:10:96::20\]|198\.51\.100\.7|203\.0\.113\.10\/32 -p tcp/, `${family}: nothing of the old addresses`);
  }

  // Everything off: every owned chain and jump goes, raw before filter.
  await applyAll(ns, world({}));
  for (const family of FAMILIES) t.notMatch(await saves(ns, family), /NODENET/, `${family}: nothing of nodenet left`);
});
