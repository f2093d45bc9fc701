// NOTRACK DNS: UDP DNS queries sent in parallel from one socket (A and AAAA) race in conntrack's
// insertion and one of them is dropped, a five-second resolver timeout each time. Taking DNS
// packets out of conntrack avoids the race. It is correct only in IPVS mode: IPVS keeps its own
// connection table and forwards untracked packets, while iptables/nftables kube-proxy DNATs through
// conntrack and so cannot redirect a packet conntrack never saw.
//
// raw (PREROUTING and OUTPUT -> NODENET-DNS-NOTRACK), per family:
//   -d <DNS cluster IP> -p udp -m comment --comment "<ns>/<name>" -m udp --dport 53 -j CT --notrack
//   -d <DNS endpoint>   -p udp -m comment ... -m udp --dport 53 -j CT --notrack   (IPVS's leg to the server)
//   -s <DNS endpoint>   -p udp -m comment ... -m udp --sport 53 -j CT --notrack   (its replies)
// filter (INPUT, OUTPUT and FORWARD -> NODENET-DNS-ACCEPT), per family:
//   -p udp -m conntrack --ctstate UNTRACKED -m udp --dport 53 -j ACCEPT, and the same with --sport 53
// Untracked packets match neither ESTABLISHED nor RELATED, so a firewall that accepts only those
// (with a DROP policy) would drop them; the ACCEPTs let them through. Their content never depends on
// the cluster, only on whether the fix is on, so keeping them in place whenever the fix is on is
// enough for the raw rules to always have them: see order.ts.
//
// Endpoints come from the DNS Services' EndpointSlices. A fallback to the pod CIDR is deliberately
// not made: it would also take the replies of every other DNS server running in a pod out of
// conntrack, and untracking only the cluster IP leg would leave the replies tracked, creating the
// very conntrack entries the fix exists to avoid. A DNS Service without endpoints therefore gets no
// rules (and a finding), which is also what it needs while it has nothing to answer with.
import type { IpFamily, RuleSpec } from '../kernel/netfilter/index.js';
import * as b from '../kernel/netfilter/build.js';

import { type Address, formatAddress, parseAddress, uniqueAddresses } from './addresses.js';
import { CHAINS, comment, jumpRule, type Part } from './chains.js';
import { clusterIPs, compareRefs, FAMILY_LABEL, isHeadless } from './families.js';
import type { EndpointSliceInput, Finding, ModelInput, ServiceInput } from './types.js';

const FIX = 'notrack-dns' as const;
export const DNS_PORT = 53;
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** The ACCEPT rules untracked DNS needs in filter; the same whenever the fix is on. */
function acceptRules(): RuleSpec[] {
  return [
    b.rule({ protocol: 'udp' }, [comment('nodenet: DNS queries nodenet took out of conntrack'), b.ctstate(['UNTRACKED']), b.udp({ dport: DNS_PORT })], b.accept()),
    b.rule({ protocol: 'udp' }, [comment('nodenet: DNS replies nodenet took out of conntrack'), b.ctstate(['UNTRACKED']), b.udp({ sport: DNS_PORT })], b.accept()),
  ];
}

function slicesOf(service: ServiceInput, slices: EndpointSliceInput[]): EndpointSliceInput[] {
  return slices.filter((s) => s.metadata.namespace === service.metadata.namespace && s.metadata.labels?.[SERVICE_NAME_LABEL] === service.metadata.name);
}

/** The UDP port the endpoints serve the Service's UDP 53 on, when a slice says it is another one. */
function otherTargetPort(portName: string, slices: EndpointSliceInput[]): number | null {
  let other: number | null = null;
  for (const slice of slices) {
    for (const p of slice.ports ?? []) {
      const protocol = (p.protocol ?? 'TCP').toUpperCase();
      if (protocol !== 'UDP' || (p.name ?? '') !== portName) continue;
      // A null port means "all ports": the server then answers on 53 too.
      if (p.port !== null && p.port !== undefined && p.port !== DNS_PORT && (other === null || p.port < other)) other = p.port;
    }
  }
  return other;
}

function endpointsOf(slices: EndpointSliceInput[], family: IpFamily): Address[] {
  const wanted = family === 'ipv4' ? 'IPv4' : 'IPv6';
  const out: Address[] = [];
  for (const slice of slices) {
    if (slice.addressType !== wanted) continue;
    // Every listed endpoint, ready or not: a terminating server may still answer, and rules that
    // follow readiness would churn on every probe flap.
    for (const ep of slice.endpoints ?? []) {
      for (const text of ep.addresses ?? []) {
        const a = parseAddress(text);
        if (a && a.family === family) out.push(a);
      }
    }
  }
  return uniqueAddresses(out);
}

export function renderNotrackDns(input: ModelInput, families: IpFamily[], services: ServiceInput[]): { parts: Part[]; findings: Finding[] } {
  const findings: Finding[] = [];
  if (!input.config.notrackDns) return { parts: [], findings };
  if (input.facts.proxyMode !== 'ipvs') {
    findings.push({
      severity: 'warning',
      fix: FIX,
      reason: 'NotIPVSMode',
      message:
        `RULE_NOT_TRACK_DNS_ENABLE is set but kube-proxy runs in ${input.facts.proxyMode} mode, which DNATs Service traffic through conntrack: ` +
        'untracked DNS packets would never reach a DNS server, so no NOTRACK rules are written',
    });
    return { parts: [], findings };
  }

  const wanted = [...new Map(input.config.dnsServices.map((d) => [`${d.namespace}/${d.name}`, d])).values()].sort(compareRefs);
  // Only the few DNS Services are looked up: no key string per Service (there may be 10,000).
  const byKey = new Map<string, ServiceInput>();
  for (const s of services) {
    for (const d of wanted) if (s.metadata.name === d.name && s.metadata.namespace === d.namespace) byKey.set(`${d.namespace}/${d.name}`, s);
  }
  const raw = new Map<IpFamily, RuleSpec[]>(families.map((f) => [f, []]));
  const seen = new Set<string>();
  const add = (family: IpFamily, key: string, rule: RuleSpec) => {
    if (seen.has(key)) return;
    seen.add(key);
    raw.get(family)!.push(rule);
  };

  for (const d of wanted) {
    const key = `${d.namespace}/${d.name}`;
    const service = { namespace: d.namespace, name: d.name };
    const s = byKey.get(key);
    if (!s) {
      findings.push({ severity: 'warning', fix: FIX, reason: 'DNSServiceNotFound', message: `DNS Service ${key} (RULE_NOT_TRACK_DNS_SERVICES) does not exist; no NOTRACK rules for it`, service });
      continue;
    }
    if (isHeadless(s)) {
      findings.push({ severity: 'warning', fix: FIX, reason: 'Headless', message: `DNS Service ${key} is headless; only a cluster IP is taken out of conntrack, so no NOTRACK rules for it`, service });
      continue;
    }
    const udp53 = (s.spec.ports ?? []).find((p) => (p.protocol ?? 'TCP').toUpperCase() === 'UDP' && p.port === DNS_PORT);
    if (!udp53) {
      findings.push({ severity: 'warning', fix: FIX, reason: 'NoUDPPort53', message: `DNS Service ${key} has no UDP port 53; no NOTRACK rules for it`, service });
      continue;
    }
    const slices = slicesOf(s, input.dnsEndpointSlices);
    const target = otherTargetPort(udp53.name ?? '', slices);
    if (target !== null) {
      findings.push({
        severity: 'warning',
        fix: FIX,
        reason: 'TargetPortNot53',
        message: `DNS Service ${key} forwards UDP 53 to port ${target} on its endpoints; nodenet untracks only port 53, so no NOTRACK rules for it`,
        service,
      });
      continue;
    }
    for (const family of families) {
      const ips = clusterIPs(s, family);
      if (ips.length === 0) {
        findings.push({ severity: 'info', fix: FIX, reason: 'NoClusterIPForFamily', message: `DNS Service ${key} has no ${FAMILY_LABEL[family]} cluster IP; ${FAMILY_LABEL[family]} DNS stays tracked`, service });
        continue;
      }
      const endpoints = endpointsOf(slices, family);
      if (endpoints.length === 0) {
        findings.push({
          severity: 'warning',
          fix: FIX,
          reason: 'NoDNSEndpoints',
          message: `DNS Service ${key} has no ${FAMILY_LABEL[family]} endpoints in its EndpointSlices; its ${FAMILY_LABEL[family]} DNS stays tracked until it has some`,
          service,
        });
        continue;
      }
      for (const ip of ips) {
        const addr = formatAddress(ip);
        add(family, `d ${addr}`, b.rule({ destination: addr, protocol: 'udp' }, [comment(`${key} cluster IP`), b.udp({ dport: DNS_PORT })], b.notrack()));
      }
      for (const ep of endpoints) {
        const addr = formatAddress(ep);
        add(family, `d ${addr}`, b.rule({ destination: addr, protocol: 'udp' }, [comment(`${key} endpoint`), b.udp({ dport: DNS_PORT })], b.notrack()));
        add(family, `s ${addr}`, b.rule({ source: addr, protocol: 'udp' }, [comment(`${key} endpoint reply`), b.udp({ sport: DNS_PORT })], b.notrack()));
      }
    }
  }

  const parts: Part[] = [];
  for (const family of families) {
    parts.push({
      family,
      table: 'filter',
      chains: [{ name: CHAINS.dnsAccept, rules: acceptRules() }],
      jumps: (['INPUT', 'FORWARD', 'OUTPUT'] as const).map((chain) => ({
        chain,
        rule: jumpRule(CHAINS.dnsAccept, 'nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked'),
      })),
    });
    parts.push({
      family,
      table: 'raw',
      chains: [{ name: CHAINS.dnsNotrack, rules: raw.get(family)! }],
      jumps: (['PREROUTING', 'OUTPUT'] as const).map((chain) => ({
        chain,
        rule: jumpRule(CHAINS.dnsNotrack, 'nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack'),
      })),
    });
  }
  return { parts, findings };
}
