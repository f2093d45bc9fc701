// Fuzz: random Services, slices, Nodes and configuration from a seeded PRNG (a failure names its
// seed). Whatever the input, render never throws, every TableState passes netfilter.apply's
// validation and every rule encodes, no address of the wrong family appears, and the output does
// not depend on the input's order.
import t from 'tap';

import { encodeRule } from '../../lib/kernel/netfilter/encode.js';
import type { IpFamily, RuleSpec } from '../../lib/kernel/netfilter/index.js';
import { OWNED_PREFIX } from '../../lib/kernel/netfilter/apply.js';
import { validateTableState } from '../../lib/kernel/netfilter/validate.js';
import { render, type EndpointSliceInput, type ModelInput, type ProxyMode, type ServiceInput } from '../../lib/model/index.js';

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

class Gen {
  constructor(readonly rnd: () => number) {}
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  list<T>(max: number, make: () => T): T[] {
    return Array.from({ length: this.int(max + 1) }, make);
  }
  v4(): string {
    return this.pick([`10.96.${this.int(4)}.${this.int(256)}`, `203.0.113.${this.int(256)}`, `10.244.${this.int(4)}.${this.int(256)}`, `${this.int(256)}.${this.int(256)}.${this.int(256)}.${this.int(256)}`]);
  }
  v6(): string {
    return this.pick([`fd00:10:96::${this.int(0x10000).toString(16)}`, `2001:db8::${this.int(0x10000).toString(16)}`, `fd00:10:244:${this.int(4)}::${this.int(0x100).toString(16)}`, '::ffff:10.0.0.1', '::', '::1', `2001:DB8:0:0:0:0:0:${this.int(9)}`]);
  }
  garbage(): string {
    return this.pick(['', ' ', 'None', 'nope', '10.0.0', '10.0.0.256', '1::2::3', 'fe80::1%eth0', '10.0.0.1/24', '-1', '0x0a000001', '\u0000', '::g']);
  }
  ip(): string {
    const r = this.rnd();
    return r < 0.45 ? this.v4() : r < 0.85 ? this.v6() : this.garbage();
  }
  cidr(): string {
    const r = this.rnd();
    if (r < 0.4) return `${this.v4()}/${this.int(33)}`;
    if (r < 0.8) return `${this.v6()}/${this.int(129)}`;
    return this.pick([...['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', 'x/8', '10.0.0.0/8/8'], this.garbage()]);
  }
  name(): string {
    return this.pick(['web', 'api', 'kube-dns', 'coredns', `s${this.int(50)}`, 'ü'.repeat(this.int(200)), 'x'.repeat(this.int(300)), 'quote"d', 'new\nline']);
  }
}

function service(g: Gen): ServiceInput {
  const clusterIPs = g.chance(0.1) ? [g.pick(['None', ''])] : g.list(2, () => (g.chance(0.5) ? g.v4() : g.v6()));
  return {
    metadata: { namespace: g.pick(['default', 'kube-system', 'shop', g.name()]), name: g.name() },
    spec: {
      type: g.pick(['LoadBalancer', 'LoadBalancer', 'ClusterIP', 'NodePort', 'ExternalName', undefined]),
      clusterIP: g.chance(0.8) ? clusterIPs[0] : undefined,
      clusterIPs: g.chance(0.8) ? clusterIPs : undefined,
      externalIPs: g.chance(0.4) ? g.list(3, () => g.ip()) : undefined,
      loadBalancerSourceRanges: g.chance(0.3) ? g.list(3, () => g.cidr()) : undefined,
      ports: g.list(4, () => ({
        name: g.chance(0.7) ? g.pick(['http', 'dns', 'x', 'a-very-long-port-name']) : undefined,
        protocol: g.chance(0.8) ? g.pick(['TCP', 'UDP', 'SCTP', 'tcp']) : g.pick([undefined, 'ICMP', '']),
        port: g.chance(0.9) ? g.pick([53, 80, 443, 3868, 1 + g.int(65535)]) : g.pick([0, -1, 65536, 1.5, NaN]),
      })),
    },
    status: g.chance(0.8)
      ? { loadBalancer: { ingress: g.list(3, () => ({ ip: g.chance(0.8) ? g.ip() : undefined, hostname: g.chance(0.3) ? 'lb.example' : undefined, ipMode: g.pick([undefined, 'VIP', 'Proxy']) })) } }
      : undefined,
  };
}

function slice(g: Gen, services: ServiceInput[]): EndpointSliceInput {
  const owner = services.length && g.chance(0.8) ? g.pick(services).metadata : { namespace: 'kube-system', name: 'kube-dns' };
  return {
    metadata: { namespace: owner.namespace, name: `s-${g.int(1000)}`, labels: g.chance(0.9) ? { 'kubernetes.io/service-name': owner.name } : {} },
    addressType: g.pick(['IPv4', 'IPv6', 'FQDN']),
    endpoints: g.chance(0.9) ? g.list(3, () => ({ addresses: g.list(2, () => g.ip()), conditions: { ready: g.pick([true, false, null]) } })) : undefined,
    ports: g.chance(0.9) ? g.list(2, () => ({ name: g.pick(['dns', '', null]), protocol: g.pick(['UDP', 'TCP', null]), port: g.pick([53, 53, 1053, null]) })) : null,
  };
}

function world(seed: number): ModelInput {
  const g = new Gen(prng(seed));
  const services = g.list(12, () => service(g));
  if (g.chance(0.7)) services.push({ metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: g.v4(), clusterIPs: [g.v4(), g.v6()], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } });
  return {
    config: {
      dropInvalidInput: g.chance(0.5),
      externalCluster: g.chance(0.8),
      externalIPs: g.chance(0.5),
      notrackDns: g.chance(0.7),
      dnsServices: g.list(3, () => g.pick([{ namespace: 'kube-system', name: 'kube-dns' }, { namespace: g.name(), name: g.name() }])),
      families: g.pick([['ipv4'], ['ipv6'], ['ipv4', 'ipv6'], ['ipv6', 'ipv4']] as IpFamily[][]),
      podCidrs: g.chance(0.5) ? { ipv4: g.list(2, () => g.cidr()), ipv6: g.list(2, () => g.cidr()) } : {},
      masqueradeBit: g.chance(0.9) ? g.int(32) : g.pick([32, -1, 14.5, NaN]),
    },
    facts: { proxyMode: g.pick<ProxyMode>(['ipvs', 'ipvs', 'ipvs', 'iptables', 'nftables']), tcpBeLiberal: g.pick([true, false, null]) },
    services,
    dnsEndpointSlices: g.list(4, () => slice(g, services)),
    node: g.chance(0.9) ? { metadata: { name: 'node' }, spec: { podCIDRs: g.list(2, () => g.cidr()), podCIDR: g.chance(0.3) ? g.cidr() : undefined } } : null,
  };
}

// Every address a rule carries, and the family it must be of.
function addresses(r: RuleSpec): string[] {
  const out = [r.source?.value, r.destination?.value].filter((a): a is string => typeof a === 'string');
  if (r.target.kind === 'extension' && r.target.name === 'DNAT') {
    const o = r.target.options as { addresses: { from: string; to: string } };
    out.push(o.addresses.from, o.addresses.to);
  }
  return out;
}

const SEEDS = 400;

t.test(`${SEEDS} random worlds`, async (t) => {
  let rules = 0;
  let problems = 0;
  const fail = (seed: number, what: string) => {
    problems++;
    t.fail(`seed ${seed}: ${what}`);
  };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const input = world(seed);
    let state;
    try {
      state = render(input);
    } catch (e) {
      fail(seed, `render threw ${(e as Error).stack}`);
      continue;
    }
    const got = state.tables.map((x) => `${x.family} ${x.table}`);
    const want = ['ipv4', 'ipv6'].flatMap((f) => ['filter', 'nat', 'raw'].map((tb) => `${f} ${tb}`));
    if (JSON.stringify(got) !== JSON.stringify(want)) fail(seed, `tables ${got.join(', ')}`);
    for (const x of state.tables) {
      if (!input.config.families.includes(x.family) && (x.chains.length || x.jumps.length)) fail(seed, `rules for ${x.family}, which NET_STACK leaves out`);
    }
    for (const table of state.tables) {
      try {
        validateTableState(table, OWNED_PREFIX);
      } catch (e) {
        fail(seed, `${table.family} ${table.table}: ${(e as Error).message}`);
      }
      const all = [...table.jumps.map((j) => j.rule), ...table.chains.flatMap((c) => c.rules)];
      for (const r of all) {
        rules++;
        try {
          encodeRule(r, table.family);
        } catch (e) {
          fail(seed, `${table.family} ${table.table}: encodeRule: ${(e as Error).message}`);
        }
        for (const a of addresses(r)) {
          if (a === '' || a.includes(':') !== (table.family === 'ipv6')) fail(seed, `${table.family} ${table.table}: address ${JSON.stringify(a)} of the wrong family`);
        }
      }
    }
    const reversed: ModelInput = { ...input, services: [...input.services].reverse(), dnsEndpointSlices: [...input.dnsEndpointSlices].reverse() };
    if (JSON.stringify(render(reversed)) !== JSON.stringify(state)) fail(seed, 'output depends on the input order');
    if (problems > 20) break;
  }
  t.equal(problems, 0, `no problems in ${rules} rules`);
  t.ok(rules > SEEDS * 5, `the worlds produce rules (${rules})`);
});
