// Determinism: the same world in any order renders to identical output (so an unchanged cluster
// diffs to nothing and commits nothing), rendering twice gives the same result, and the input is
// never modified.
import t from 'tap';

import { render, type EndpointSliceInput, type ModelInput, type ServiceInput } from '../../lib/model/index.js';

// mulberry32: a small seeded PRNG, so a failure reproduces.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: readonly T[] | undefined, rnd: () => number): T[] | undefined {
  if (!items) return items;
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function services(): ServiceInput[] {
  const out: ServiceInput[] = [];
  for (let i = 0; i < 40; i++) {
    const ns = `team-${i % 4}`;
    out.push({
      metadata: { namespace: ns, name: `svc-${(i * 7) % 40}` },
      spec: {
        type: i % 5 === 0 ? 'ClusterIP' : 'LoadBalancer',
        clusterIP: `10.96.${i}.1`,
        clusterIPs: i % 2 ? [`10.96.${i}.1`, `fd00:10:96::${i.toString(16)}:1`] : [`10.96.${i}.1`],
        externalIPs: i % 3 === 0 ? [`198.51.100.${i + 1}`, `198.51.100.${i + 100}`] : [],
        loadBalancerSourceRanges: i % 4 === 0 ? ['10.0.0.0/8', '10.244.1.128/25', '192.168.0.0/16', 'fd00::/8'] : [],
        ports: [{ name: 'https', protocol: 'TCP', port: 443 }, { name: 'dns', protocol: 'UDP', port: 53 }, { name: 'http', port: 80 }, { name: 'sig', protocol: 'SCTP', port: 3868 }],
      },
      status: { loadBalancer: { ingress: [{ ip: `203.0.113.${i % 20}` }, { ip: `2001:db8::${i % 20}` }, { hostname: `lb-${i}.example` }, { ip: `203.0.113.${200 + i}`, ipMode: i % 2 ? 'Proxy' : 'VIP' }] } },
    });
  }
  out.push({ metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } });
  out.push({ metadata: { namespace: 'dns', name: 'coredns' }, spec: { clusterIP: '10.96.0.53', ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } });
  return out;
}

function slices(): EndpointSliceInput[] {
  const slice = (ns: string, svc: string, name: string, type: string, addrs: string[]): EndpointSliceInput => ({
    metadata: { namespace: ns, name, labels: { 'kubernetes.io/service-name': svc } },
    addressType: type,
    endpoints: addrs.map((a) => ({ addresses: [a] })),
    ports: [{ name: 'dns', protocol: 'UDP', port: 53 }],
  });
  return [
    slice('kube-system', 'kube-dns', 'kube-dns-1', 'IPv4', ['10.244.1.5', '10.244.2.9', '10.244.1.10']),
    slice('kube-system', 'kube-dns', 'kube-dns-2', 'IPv4', ['10.244.3.4', '10.244.1.5']),
    slice('kube-system', 'kube-dns', 'kube-dns-3', 'IPv6', ['fd00:10:244:1::5', 'fd00:10:244:2::9']),
    slice('dns', 'coredns', 'coredns-1', 'IPv4', ['10.244.9.1', '10.244.2.9']),
  ];
}

const base: ModelInput = {
  config: {
    dropInvalidInput: true,
    externalCluster: true,
    externalIPs: true,
    notrackDns: true,
    dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }, { namespace: 'dns', name: 'coredns' }, { namespace: 'kube-system', name: 'missing' }],
    families: ['ipv4', 'ipv6'],
    podCidrs: { ipv4: ['10.244.0.0/16', '10.250.0.0/16'] },
    masqueradeBit: 14,
  },
  facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
  services: services(),
  dnsEndpointSlices: slices(),
  node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
};

function shuffled(input: ModelInput, seed: number): ModelInput {
  const rnd = prng(seed);
  return {
    config: {
      ...input.config,
      dnsServices: shuffle(input.config.dnsServices, rnd)!,
      families: shuffle(input.config.families, rnd)!,
      podCidrs: { ipv4: shuffle(input.config.podCidrs.ipv4, rnd) },
    },
    facts: input.facts,
    node: input.node,
    services: shuffle(input.services, rnd)!.map((s) => ({
      metadata: s.metadata,
      spec: {
        ...s.spec,
        externalIPs: shuffle(s.spec.externalIPs, rnd),
        loadBalancerSourceRanges: shuffle(s.spec.loadBalancerSourceRanges, rnd),
        ports: shuffle(s.spec.ports, rnd),
      },
      status: { loadBalancer: { ingress: shuffle(s.status?.loadBalancer?.ingress, rnd) } },
    })),
    dnsEndpointSlices: shuffle(input.dnsEndpointSlices, rnd)!.map((sl) => ({ ...sl, endpoints: shuffle(sl.endpoints, rnd) })),
  };
}

t.test('the world in any order renders identically', async (t) => {
  const expected = render(base);
  t.ok(expected.tables.some((x) => x.chains.some((c) => c.rules.length > 50)), 'a world big enough to matter');
  for (let seed = 1; seed <= 25; seed++) {
    const got = render(shuffled(base, seed));
    t.strictSame(got.tables, expected.tables, `seed ${seed}: tables`);
    t.strictSame(got.findings, expected.findings, `seed ${seed}: findings`);
  }
});

t.test('the shuffle does change the input (so the test above can fail)', async (t) => {
  t.not(JSON.stringify(shuffled(base, 1).services), JSON.stringify(base.services));
});

t.test('rendering twice gives the same result, and the input is left as it was', async (t) => {
  const before = JSON.stringify(base);
  t.same(render(base), render(base));
  t.equal(JSON.stringify(base), before);
});
