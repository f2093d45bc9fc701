// Incremental rendering: a ModelRenderer kept across renders (as the reconciler keeps one) gives
// exactly what a fresh render(input) gives, whatever changed in between — Services edited, added,
// removed, reordered or replaced by equal copies, and every node-wide input — while a Service whose
// ServiceInput object did not change keeps its very RuleSpec objects, and so does every other rule
// that did not change (the kernel layer caches per RuleSpec object). No timing is asserted here.
import t from 'tap';

import type { IpFamily, RuleSpec } from '../../lib/kernel/netfilter/index.js';
import { serviceInput } from '../../lib/controller/node-fixes/model-input.js';
import { CHAINS, ModelRenderer, render, type DesiredState, type EndpointSliceInput, type ModelInput, type ServiceInput } from '../../lib/model/index.js';

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

// Small address pools, so Services often claim the same address and port (SharedAddressConflict).
const V4 = ['203.0.113.1', '203.0.113.2', '203.0.113.3', '198.51.100.7'];
const V6 = ['2001:db8::1', '2001:db8::2'];

class Worlds {
  private readonly rnd: () => number;
  private names = 0;
  constructor(seed: number) {
    this.rnd = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  list<T>(min: number, max: number, make: () => T): T[] {
    return Array.from({ length: min + this.int(max - min + 1) }, make);
  }

  /** A Service with this namespace/name (a fresh name when none is given). */
  service(ref?: { namespace: string; name: string }): ServiceInput {
    const metadata = ref ?? { namespace: this.pick(['default', 'shop', 'team-a']), name: `svc-${this.names++}` };
    const n = this.int(256);
    const clusterIPs = this.chance(0.1) ? ['None'] : this.pick([[`10.96.0.${n}`], [`10.96.0.${n}`, `fd00:10:96::${n.toString(16)}`], [`fd00:10:96::${n.toString(16)}`]]);
    return {
      metadata,
      spec: {
        type: this.pick(['LoadBalancer', 'LoadBalancer', 'LoadBalancer', 'ClusterIP', 'ExternalName']),
        clusterIP: clusterIPs[0],
        clusterIPs,
        ...(this.chance(0.3) ? { externalIPs: this.list(1, 2, () => this.pick([...V4, ...V6, 'not-an-ip'])) } : {}),
        ...(this.chance(0.3) ? { loadBalancerSourceRanges: this.list(1, 2, () => this.pick(['10.244.0.0/16', '10.244.1.0/24', '192.168.0.0/16', 'fd00::/8', 'bogus'])) } : {}),
        ports: this.list(1, 3, () => ({
          ...(this.chance(0.7) ? { name: this.pick(['http', 'https', 'dns']) } : {}),
          ...(this.chance(0.9) ? { protocol: this.pick(['TCP', 'UDP', 'SCTP', 'ICMP']) } : {}),
          port: this.pick([53, 80, 443, 0]),
        })),
      },
      ...(this.chance(0.85)
        ? {
            status: {
              loadBalancer: {
                ingress: this.list(0, 2, () => (this.chance(0.1) ? { hostname: 'lb.example' } : { ip: this.pick([...V4, ...V6]), ...(this.chance(0.1) ? { ipMode: 'Proxy' } : {}) })),
              },
            },
          }
        : {}),
    };
  }

  dnsService(): ServiceInput {
    return {
      metadata: { namespace: 'kube-system', name: 'kube-dns' },
      spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
    };
  }

  slices(): EndpointSliceInput[] {
    return this.list(0, 2, () => ({
      metadata: { namespace: 'kube-system', name: `kube-dns-${this.int(3)}`, labels: { 'kubernetes.io/service-name': 'kube-dns' } },
      addressType: this.pick(['IPv4', 'IPv6']),
      endpoints: this.list(1, 2, () => ({ addresses: [this.pick(['10.244.1.5', '10.244.2.9', 'fd00:10:244:1::5'])] })),
      ports: [{ name: 'dns', protocol: 'UDP', port: this.chance(0.9) ? 53 : 1053 }],
    }));
  }
}

function baseInput(w: Worlds, services: ServiceInput[]): ModelInput {
  return {
    config: {
      dropInvalidInput: true,
      externalCluster: true,
      externalIPs: true,
      notrackDns: true,
      dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }],
      families: ['ipv4', 'ipv6'],
      podCidrs: { ipv4: ['10.244.0.0/16'] },
      masqueradeBit: 14,
    },
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services,
    dnsEndpointSlices: w.slices(),
    node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
  };
}

/** Every rule with where it is: "<family> <table> <chain>" (a jump's chain is the builtin one). */
function placedRules(state: DesiredState): Array<{ where: string; rule: RuleSpec }> {
  return state.tables.flatMap((x) => [
    ...x.chains.flatMap((c) => c.rules.map((rule) => ({ where: `${x.family} ${x.table} ${c.name}`, rule }))),
    ...x.jumps.map((j) => ({ where: `${x.family} ${x.table} ${j.chain} (jump)`, rule: j.rule })),
  ]);
}

/** The Service an External-IP rule is for: its comment is "<namespace>/<name>[:<port name>]". */
function serviceOfRule(rule: RuleSpec): string {
  const text = (rule.matches?.find((m) => m.name === 'comment')?.options as { comment: string }).comment;
  const [namespace, rest] = text.split('/') as [string, string];
  return `${namespace}/${rest.split(':')[0]}`;
}

const keyOf = (s: ServiceInput) => `${s.metadata.namespace}/${s.metadata.name}`;
const EXTERNAL_CHAINS: readonly string[] = [CHAINS.externalHost, CHAINS.externalPods];

/** Keys of the Services that are one and the same object in both lists (and the only one of that key). */
function unchangedServices(before: readonly ServiceInput[], after: readonly ServiceInput[]): Set<string> {
  const only = (list: readonly ServiceInput[]) => {
    const byKey = new Map<string, ServiceInput | null>();
    for (const s of list) byKey.set(keyOf(s), byKey.has(keyOf(s)) ? null : s);
    return byKey;
  };
  const a = only(before);
  const out = new Set<string>();
  for (const [key, s] of only(after)) if (s && a.get(key) === s) out.add(key);
  return out;
}

/** What is wrong with the identities of `next`'s rules, given the render before it. */
function identityProblems(prev: DesiredState, next: DesiredState, unchanged: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const before = new Set(placedRules(prev).map((p) => p.rule));
  const byContent = new Map(placedRules(prev).map((p) => [`${p.where} ${JSON.stringify(p.rule)}`, p.rule]));
  const seen = new Map<RuleSpec, string>();
  for (const { where, rule } of placedRules(next)) {
    const table = where.split(' ').slice(0, 2).join(' ');
    const elsewhere = seen.get(rule);
    if (elsewhere !== undefined && elsewhere !== table) problems.push(`one RuleSpec object in ${elsewhere} and ${table}`);
    seen.set(rule, table);
    if (EXTERNAL_CHAINS.includes(where.split(' ')[2]!)) {
      const service = serviceOfRule(rule);
      if (unchanged.has(service) && !before.has(rule)) problems.push(`${where}: a rule of unchanged ${service} is a new object`);
    } else {
      // Not rendered per Service: an equal rule in the same place must be the same object.
      const old = byContent.get(`${where} ${JSON.stringify(rule)}`);
      if (old && old !== rule) problems.push(`${where}: unchanged rule ${JSON.stringify(rule)} is a new object`);
    }
  }
  return problems;
}

t.test('a kept renderer equals a fresh render through random edits, and keeps unchanged rules', async (t) => {
  const SEEDS = 6;
  const STEPS = 60;
  let problems = 0;
  let reused = 0;
  let conflicts = 0;
  const fail = (what: string) => {
    problems++;
    t.fail(what);
  };
  for (let seed = 1; seed <= SEEDS && problems < 10; seed++) {
    const w = new Worlds(seed);
    let input = baseInput(w, [w.dnsService(), ...w.list(20, 40, () => w.service())]);
    const renderer = new ModelRenderer();
    let prev = renderer.render(input);
    let prevServices = input.services;
    for (let step = 1; step <= STEPS && problems < 10; step++) {
      const services = [...input.services];
      let slices = input.dnsEndpointSlices;
      const edits: string[] = [];
      for (let e = 0; e < 1 + w.int(3); e++) {
        const i = w.int(services.length);
        const edit = w.pick(['update', 'update', 'update', 'copy', 'add', 'remove', 'reorder', 'slices']);
        edits.push(edit);
        if (edit === 'update') services[i] = w.service(services[i]!.metadata);
        else if (edit === 'copy') services[i] = structuredClone(services[i]!);
        else if (edit === 'add') services.splice(i, 0, w.service());
        else if (edit === 'remove' && services.length > 1) services.splice(i, 1);
        else if (edit === 'reorder') services.reverse();
        else if (edit === 'slices') slices = w.slices();
      }
      input = { ...input, services, dnsEndpointSlices: slices };
      const at = `seed ${seed} step ${step} (${edits.join(', ')})`;
      const got = renderer.render(input);
      const fresh = render(input);
      if (JSON.stringify(got) !== JSON.stringify(fresh)) {
        fail(`${at}: differs from a fresh render`);
        t.strictSame(got, fresh, at);
      }
      for (const p of identityProblems(prev, got, unchangedServices(prevServices, services))) fail(`${at}: ${p}`);
      const old = new Set(placedRules(prev).map((p) => p.rule));
      if (placedRules(got).some((p) => old.has(p.rule))) reused++;
      conflicts += got.findings.filter((f) => f.reason === 'SharedAddressConflict').length;
      prev = got;
      prevServices = services;
    }
    t.strictSame(prev, render(input), `seed ${seed}: the last render, deeply`);
  }
  t.equal(problems, 0, 'no problems');
  t.ok(reused > SEEDS * STEPS * 0.9, `renders reuse earlier rule objects (${reused})`);
  t.ok(conflicts > 0, `the edits produce shared-address conflicts (${conflicts}), whose order the memo must keep`);
});

t.test('every node-wide input is honoured: output changes exactly as a fresh render', async (t) => {
  const w = new Worlds(42);
  const services = [w.dnsService(), ...w.list(30, 30, () => w.service())];
  services.push({
    metadata: { namespace: 'default', name: 'with-external-ip' },
    spec: { type: 'LoadBalancer', clusterIP: '10.96.1.1', clusterIPs: ['10.96.1.1'], externalIPs: ['198.51.100.99'], ports: [{ protocol: 'UDP', port: 53 }] },
    status: { loadBalancer: { ingress: [{ ip: '203.0.113.99' }] } },
  });
  const base = baseInput(w, services);
  base.dnsEndpointSlices = [
    { metadata: { namespace: 'kube-system', name: 'kube-dns-1', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
  ];
  const variants: Array<[string, (i: ModelInput) => ModelInput]> = [
    ['POD_CIDR_IPV4', (i) => ({ ...i, config: { ...i.config, podCidrs: { ipv4: ['10.250.0.0/16'] } } })],
    ['POD_CIDR_IPV6 set', (i) => ({ ...i, config: { ...i.config, podCidrs: { ...i.config.podCidrs, ipv6: ['fd00:99::/64'] } } })],
    ["the Node's podCIDRs (no POD_CIDR_*)", (i) => ({ ...i, config: { ...i.config, podCidrs: {} }, node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.7.0/24'] } } })],
    ['no Node and no POD_CIDR_*', (i) => ({ ...i, config: { ...i.config, podCidrs: {} }, node: null })],
    ['masquerade bit', (i) => ({ ...i, config: { ...i.config, masqueradeBit: 15 } })],
    ['an invalid masquerade bit', (i) => ({ ...i, config: { ...i.config, masqueradeBit: 40 } })],
    ['families: IPv4 only', (i) => ({ ...i, config: { ...i.config, families: ['ipv4'] as IpFamily[] } })],
    ['families: IPv6 only', (i) => ({ ...i, config: { ...i.config, families: ['ipv6'] as IpFamily[] } })],
    ['proxy mode iptables', (i) => ({ ...i, facts: { ...i.facts, proxyMode: 'iptables' } })],
    ['proxy mode nftables', (i) => ({ ...i, facts: { ...i.facts, proxyMode: 'nftables' } })],
    ['externalIPs off', (i) => ({ ...i, config: { ...i.config, externalIPs: false } })],
    ['external-cluster off', (i) => ({ ...i, config: { ...i.config, externalCluster: false } })],
    ['notrack-dns off', (i) => ({ ...i, config: { ...i.config, notrackDns: false } })],
    ['drop-invalid off', (i) => ({ ...i, config: { ...i.config, dropInvalidInput: false } })],
    ['other DNS endpoints', (i) => ({ ...i, dnsEndpointSlices: [{ ...i.dnsEndpointSlices[0]!, endpoints: [{ addresses: ['10.244.3.3'] }] }] })],
  ];
  const renderer = new ModelRenderer();
  const baseOut = renderer.render(base);
  t.strictSame(baseOut, render(base), 'base');
  const again = renderer.render({ ...base, services: [...base.services].reverse() });
  t.strictSame(again, baseOut, 'base again, in another order');
  t.strictSame(identityProblems(baseOut, again, new Set(base.services.map(keyOf))), [], 'an unchanged world keeps every RuleSpec object');
  t.ok(
    placedRules(again).every((p, i) => p.rule === placedRules(baseOut)[i]!.rule),
    'every single rule, per Service or not, is the same object',
  );

  // Each variant on its own, then back to the base, then variants stacked: a memo that missed an
  // input would hand back the rules of the context it was filled in.
  let stacked = base;
  for (const [name, change] of variants) {
    const changed = change(base);
    const got = renderer.render(changed);
    t.strictSame(got, render(changed), `${name}: as a fresh render`);
    t.not(JSON.stringify(got), JSON.stringify(baseOut), `${name}: the output changed`);
    t.strictSame(renderer.render(base), baseOut, `${name}, then back: the base output`);
    stacked = change(stacked);
    t.strictSame(renderer.render(stacked), render(stacked), `${name}, stacked on the ones before: as a fresh render`);
  }
});

t.test('one Service changed: only its rules are new objects', async (t) => {
  const w = new Worlds(7);
  const services = w.list(50, 50, () => w.service());
  const input = baseInput(w, services);
  const renderer = new ModelRenderer();
  const before = renderer.render(input);
  const i = services.findIndex((s) => s.spec.type === 'LoadBalancer' && s.status?.loadBalancer?.ingress?.some((x) => x.ip && !x.ipMode) && s.spec.clusterIPs?.[0] !== 'None');
  t.ok(i >= 0, 'a LoadBalancer Service to change');
  const target = services[i]!;
  const changed = { ...target, spec: { ...target.spec, ports: [{ name: 'new', protocol: 'TCP', port: 8443 }] } };
  const next = { ...input, services: services.map((s) => (s === target ? changed : s)) };
  const after = renderer.render(next);
  t.strictSame(after, render(next));
  const old = new Set(placedRules(before).map((p) => p.rule));
  const fresh = placedRules(after).filter((p) => !old.has(p.rule));
  t.ok(fresh.length > 0, 'the changed Service has new rules');
  t.strictSame([...new Set(fresh.map((p) => serviceOfRule(p.rule)))], [keyOf(target)], 'and only it');
});

t.test('serviceInput: one V1Service object, one ServiceInput object', async (t) => {
  const v1 = { metadata: { namespace: 'default', name: 'web', uid: 'u1' }, spec: { type: 'LoadBalancer', clusterIP: '10.96.0.1', ports: [{ port: 80 }] } };
  const a = serviceInput(v1);
  t.ok(a);
  t.equal(serviceInput(v1), a, 'the same object again');
  const replaced = structuredClone(v1);
  t.not(serviceInput(replaced), a, 'a replaced object gives a new one');
  t.strictSame(serviceInput(replaced), a, 'with the same content');
  const unnamed = { metadata: { namespace: 'default' } };
  t.equal(serviceInput(unnamed), null);
  t.equal(serviceInput(unnamed), null, 'null stays null');
});
