// External-IP → Cluster-IP. In IPVS mode a pod that sends to a LoadBalancer IP is served by the
// node's IPVS virtual server for that IP, which with externalTrafficPolicy: Local has only this
// node's endpoints — often none, so the traffic is dropped. DNATing such traffic to the Service's
// cluster IP (and marking it for kube-proxy's masquerade) lets it reach any endpoint. In
// iptables/nftables modes kube-proxy short-circuits external IPs itself; a DNAT here would only get
// in its way, so the fix is refused there.
//
// Rule shapes (per family, per external address, per Service port, per source):
//   nat PREROUTING -> NODENET-EXTERNAL-PODS:
//     -s <pod source> -d <ext> -p <proto> -m comment --comment "<ns>/<name>[:<port name>]" -m <proto> --dport <port> -j MARK --or-mark <1<<bit>
//     (same matches) -j DNAT --to-destination <cluster IP of the family>:<port>
//   nat OUTPUT -m addrtype --src-type LOCAL -> NODENET-EXTERNAL-HOST: the same without -s (or with
//     -s <source range> when loadBalancerSourceRanges are set).
// The mark is kube-proxy's masquerade bit set directly: KUBE-MARK-MASQ is kube-proxy's chain and
// may not exist yet (or at all) when nodenet writes, and a jump to a missing chain fails the commit.
//
// loadBalancerSourceRanges: kube-proxy enforces them on the LoadBalancer IP, but a DNAT to the
// cluster IP would bypass that check. So when a Service has ranges, only sources inside them are
// DNATed, and everything else is left to kube-proxy, as if nodenet were not there. In PREROUTING the
// source is a pod, so it must be both in the pod CIDR and in a range: two prefixes are either
// disjoint or nested, so each (pod CIDR, range) pair yields the narrower prefix or nothing, and
// prefixes already covered by a wider one are dropped. In OUTPUT the source is one of the node's
// addresses, which the model does not know: the ranges themselves are matched. Ranges restrict
// only the LoadBalancer ingress IPs (as in kube-proxy), not spec.externalIPs. A range that does not
// parse is dropped, which narrows what is DNATed, never widens it; a Service whose ranges leave no
// source of a family gets no rules in that family.
import type { ExtensionSpec, IpFamily, RuleSpec } from '../kernel/netfilter/index.js';
import * as b from '../kernel/netfilter/build.js';

import { type Address, type Cidr, compareAddresses, formatAddress, formatCidr, intersectCidrs, minimalCidrs, parseAddress, parseCidr } from './addresses.js';
import { CHAINS, comment, jumpRule, type Part } from './chains.js';
import { clusterIPFor, FAMILY_LABEL, isHeadless, podCidrsFor, serviceKey, type PodCidrs } from './families.js';
import type { Finding, ModelInput, ServiceInput } from './types.js';

const FIX = 'external-cluster' as const;
export const DEFAULT_MASQUERADE_BIT = 14;

type Protocol = 'tcp' | 'udp' | 'sctp';

interface ServicePort {
  protocol: Protocol;
  port: number;
  name: string;
}

interface Target {
  address: Address;
  /** From status.loadBalancer.ingress (source ranges apply), else from spec.externalIPs. */
  ingress: boolean;
}

function portMatch(p: ServicePort): ExtensionSpec {
  if (p.protocol === 'tcp') return b.tcp({ dport: p.port });
  if (p.protocol === 'udp') return b.udp({ dport: p.port });
  return b.sctp({ dport: p.port });
}

function servicePorts(s: ServiceInput, findings: Finding[]): ServicePort[] {
  const out: ServicePort[] = [];
  for (const p of s.spec.ports ?? []) {
    const protocol = (p.protocol ?? 'TCP').toLowerCase();
    const valid = (protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp') && Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535;
    if (!valid) {
      findings.push({
        severity: 'warning',
        fix: FIX,
        reason: 'UnsupportedPort',
        message: `${serviceKey(s)}: port ${JSON.stringify(p.name ?? '')} ${String(p.protocol ?? 'TCP')}/${String(p.port)} cannot be matched (TCP, UDP or SCTP, 1-65535); skipped`,
        service: s.metadata,
      });
      continue;
    }
    out.push({ protocol: protocol as Protocol, port: p.port, name: p.name ?? '' });
  }
  out.sort((x, y) => (x.protocol < y.protocol ? -1 : x.protocol > y.protocol ? 1 : x.port - y.port || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)));
  return out.filter((p, i) => i === 0 || p.protocol !== out[i - 1]!.protocol || p.port !== out[i - 1]!.port);
}

function serviceRef(s: ServiceInput): { namespace: string; name: string } {
  return { namespace: s.metadata.namespace, name: s.metadata.name };
}

/** The addresses of a Service that traffic may be sent to from inside the cluster. */
function targetsOf(s: ServiceInput, input: ModelInput, findings: Finding[]): Target[] {
  const key = serviceKey(s);
  const service = serviceRef(s);
  const found: Target[] = [];
  if (s.spec.type === 'LoadBalancer') {
    for (const ing of s.status?.loadBalancer?.ingress ?? []) {
      if (!ing.ip) {
        // An empty ip must never become a rule: "-d /32" is 0.0.0.0/0's neighbour in a typo.
        if (ing.hostname) {
          findings.push({
            severity: 'info',
            fix: FIX,
            reason: 'HostnameOnlyIngress',
            message: `${key}: load balancer ingress ${JSON.stringify(ing.hostname)} has no IP; traffic to it is left to the load balancer`,
            service,
          });
        }
        continue;
      }
      if (ing.ipMode === 'Proxy') {
        findings.push({
          severity: 'info',
          fix: FIX,
          reason: 'IngressIPModeProxy',
          message: `${key}: load balancer ingress ${ing.ip} has ipMode Proxy, so traffic to it must go through the load balancer; not redirected`,
          service,
        });
        continue;
      }
      const a = parseAddress(ing.ip);
      if (!a) {
        findings.push({ severity: 'warning', fix: FIX, reason: 'InvalidAddress', message: `${key}: load balancer ingress IP ${JSON.stringify(ing.ip)} is not an IP address; skipped`, service });
        continue;
      }
      found.push({ address: a, ingress: true });
    }
  }
  const externalIPs = s.spec.externalIPs ?? [];
  if (externalIPs.length > 0 && !input.config.externalIPs) {
    findings.push({
      severity: 'info',
      fix: FIX,
      reason: 'ExternalIPsNotEnabled',
      message: `${key}: spec.externalIPs ${[...externalIPs].sort().join(', ')} not redirected; set RULE_EXTERNAL_IPS_ENABLE=true to redirect them (any Service author can claim any IP there, CVE-2020-8554)`,
      service,
    });
  } else {
    for (const ip of externalIPs) {
      const a = parseAddress(ip);
      if (!a) {
        findings.push({ severity: 'warning', fix: FIX, reason: 'InvalidAddress', message: `${key}: spec.externalIPs entry ${JSON.stringify(ip)} is not an IP address; skipped`, service });
        continue;
      }
      found.push({ address: a, ingress: false });
    }
  }
  // One target per address; an address that is also a LoadBalancer ingress keeps its source ranges.
  const byAddress = new Map<string, Target>();
  for (const t of found) {
    const k = `${t.address.family}/${t.address.value}`;
    const had = byAddress.get(k);
    byAddress.set(k, { address: t.address, ingress: t.ingress || (had?.ingress ?? false) });
  }
  return [...byAddress.values()].sort((x, y) => compareAddresses(x.address, y.address));
}

function sourceRanges(s: ServiceInput, findings: Finding[]): { ranges: Cidr[]; restricted: boolean } {
  const texts = s.spec.loadBalancerSourceRanges ?? [];
  const ranges: Cidr[] = [];
  for (const text of texts) {
    const c = parseCidr(text.trim());
    if (!c) {
      findings.push({
        severity: 'warning',
        fix: FIX,
        reason: 'InvalidSourceRange',
        message: `${serviceKey(s)}: loadBalancerSourceRanges entry ${JSON.stringify(text)} is not a CIDR; ignored (no source is let through for it)`,
        service: serviceRef(s),
      });
      continue;
    }
    ranges.push(c);
  }
  return { ranges, restricted: texts.length > 0 };
}

function masqueradeMark(input: ModelInput, findings: Finding[]): number {
  const bit = input.config.masqueradeBit;
  if (Number.isInteger(bit) && bit >= 0 && bit <= 31) return 2 ** bit;
  findings.push({
    severity: 'warning',
    fix: 'config',
    reason: 'InvalidMasqueradeBit',
    message: `masquerade bit ${String(bit)} is not 0-31; using kube-proxy's default ${DEFAULT_MASQUERADE_BIT}`,
  });
  return 2 ** DEFAULT_MASQUERADE_BIT;
}

export function renderExternalCluster(input: ModelInput, families: IpFamily[], services: ServiceInput[]): { parts: Part[]; findings: Finding[] } {
  const findings: Finding[] = [];
  if (!input.config.externalCluster) return { parts: [], findings };
  if (input.facts.proxyMode !== 'ipvs') {
    findings.push({
      severity: 'warning',
      fix: FIX,
      reason: 'NotIPVSMode',
      message:
        `RULE_EXTERNAL_CLUSTER_ENABLE is set but kube-proxy runs in ${input.facts.proxyMode} mode, which already serves external IPs from inside the cluster; ` +
        'a DNAT to the cluster IP would bypass it and black-hole that traffic, so no External-IP → Cluster-IP rules are written',
    });
    return { parts: [], findings };
  }

  const mark = masqueradeMark(input, findings);
  const pods = new Map<IpFamily, PodCidrs | null>();
  for (const family of families) {
    const p = podCidrsFor(input, family, findings);
    pods.set(family, p);
    if (!p) {
      const variable = family === 'ipv4' ? 'POD_CIDR_IPV4' : 'POD_CIDR_IPV6';
      const why = input.config.podCidrs[family]?.length
        ? `${variable} has no valid ${FAMILY_LABEL[family]} prefix`
        : `${variable} unset and node ${input.node?.metadata.name ?? '(unknown)'} has none in spec.podCIDRs`;
      findings.push({
        severity: 'warning',
        fix: FIX,
        reason: 'NoPodCIDR',
        message:
          `no ${FAMILY_LABEL[family]} pod CIDR (${why}): ` +
          `pods get no ${FAMILY_LABEL[family]} External-IP → Cluster-IP rules, only the node's own traffic (hostNetwork pods) is redirected`,
      });
    }
  }

  const podRules = new Map<IpFamily, RuleSpec[]>(families.map((f) => [f, []]));
  const hostRules = new Map<IpFamily, RuleSpec[]>(families.map((f) => [f, []]));
  const claimed = new Map<string, string>();

  for (const s of services) {
    if (s.spec.type === 'ExternalName') continue;
    const key = serviceKey(s);
    const service = serviceRef(s);
    const targets = targetsOf(s, input, findings);
    if (targets.length === 0) continue;
    if (isHeadless(s)) {
      findings.push({
        severity: 'info',
        fix: FIX,
        reason: 'Headless',
        message: `${key} is headless (no cluster IP), so ${targets.map((t) => formatAddress(t.address)).join(', ')} cannot be redirected to one`,
        service,
      });
      continue;
    }
    const ports = servicePorts(s, findings);
    const { ranges, restricted } = sourceRanges(s, findings);

    for (const family of families) {
      const own = targets.filter((t) => t.address.family === family);
      if (own.length === 0) continue;
      const clusterIP = clusterIPFor(s, family);
      if (!clusterIP) {
        findings.push({
          severity: 'warning',
          fix: FIX,
          reason: 'NoClusterIPForFamily',
          message: `${key}: ${own.map((t) => formatAddress(t.address)).join(', ')} ${own.length === 1 ? 'is' : 'are'} ${FAMILY_LABEL[family]} but the Service has no ${FAMILY_LABEL[family]} cluster IP; not redirected`,
          service,
        });
        continue;
      }
      const podCidrs = pods.get(family)?.cidrs ?? [];
      const familyRanges = ranges.filter((r) => r.family === family);

      const limitedPods = minimalCidrs(podCidrs.flatMap((p) => familyRanges.map((r) => intersectCidrs(p, r)).filter((c): c is Cidr => c !== null)));
      if (restricted && own.some((t) => t.ingress) && podCidrs.length > 0 && limitedPods.length === 0) {
        findings.push({
          severity: 'info',
          fix: FIX,
          reason: 'SourceRangesExcludePods',
          message: `${key}: no ${FAMILY_LABEL[family]} pod CIDR overlaps loadBalancerSourceRanges, so pods' traffic to its ${FAMILY_LABEL[family]} load balancer IPs is left to kube-proxy`,
          service,
        });
      }

      for (const target of own) {
        const limited = target.ingress && restricted;
        const podSources: Array<Cidr | null> = limited ? limitedPods : podCidrs;
        const hostSources: Array<Cidr | null> = limited ? minimalCidrs(familyRanges) : [null];
        const destination = formatAddress(target.address);

        for (const port of ports) {
          const claim = `${family} ${destination} ${port.protocol} ${port.port}`;
          const first = claimed.get(claim);
          if (first === undefined) {
            claimed.set(claim, key);
          } else if (first !== key) {
            findings.push({
              severity: 'warning',
              fix: FIX,
              reason: 'SharedAddressConflict',
              message: `${key} and ${first} both claim ${destination} ${port.protocol.toUpperCase()}/${port.port}; traffic goes to ${first}'s cluster IP`,
              service,
            });
          }
          const text = port.name ? `${key}:${port.name}` : key;
          const make = (source: Cidr | null): RuleSpec[] => {
            const header = { source: source ? formatCidr(source) : undefined, destination, protocol: port.protocol };
            const matches = [comment(text), portMatch(port)];
            return [b.rule(header, matches, b.orMark(mark)), b.rule(header, matches, b.dnat(formatAddress(clusterIP), port.port))];
          };
          podRules.get(family)!.push(...podSources.flatMap(make));
          hostRules.get(family)!.push(...hostSources.flatMap(make));
        }
      }
    }
  }

  const parts: Part[] = families.map((family) => ({
    family,
    table: 'nat',
    chains: [
      { name: CHAINS.externalHost, rules: hostRules.get(family)! },
      { name: CHAINS.externalPods, rules: podRules.get(family)! },
    ],
    jumps: [
      { chain: 'PREROUTING', rule: jumpRule(CHAINS.externalPods, 'nodenet external-cluster: pods reach external IPs through cluster IPs') },
      {
        chain: 'OUTPUT',
        rule: jumpRule(CHAINS.externalHost, 'nodenet external-cluster: the node reaches external IPs through cluster IPs', [b.addrtype({ src: ['LOCAL'] })]),
      },
    ],
  }));
  return { parts, findings };
}
