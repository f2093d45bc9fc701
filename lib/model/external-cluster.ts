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
import { clusterIPFor, FAMILY_LABEL, isHeadless, podCidrsFor, serviceKey } from './families.js';
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
function targetsOf(s: ServiceInput, externalIPsEnabled: boolean, findings: Finding[]): Target[] {
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
  if (externalIPs.length > 0 && !externalIPsEnabled) {
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

/** Everything node-wide one Service's rules depend on. */
interface NodeContext {
  families: IpFamily[];
  mark: number;
  pods: Map<IpFamily, Cidr[]>;
  externalIPs: boolean;
  /** All of the above as text: shares rendered under another fingerprint are not reused. */
  fingerprint: string;
}

/** A destination one of the Service's rules redirects, resolved against the other Services later. */
interface Claim {
  claim: string;
  destination: string;
  port: ServicePort;
}

/**
 * What one Service contributes under one NodeContext: its rules per family, and its findings and
 * claims in the order the walk met them, so that the pass over all Services can put the
 * SharedAddressConflict findings exactly where walking the Services in one go would.
 */
interface ServiceShare {
  key: string;
  /** Per family, in NodeContext.families' order. */
  pods: RuleSpec[][];
  host: RuleSpec[][];
  notes: Array<Finding | Claim>;
}

/**
 * Each Service's share of the last render, reused while the ServiceInput object and the node-wide
 * context are the same: at 10,000 Services one changed Service then costs one Service's work, and
 * every other Service keeps its very RuleSpec objects, which is what lets the kernel layer skip
 * validating and encoding them again. Keyed by object identity, so a ServiceInput must not be
 * changed in place once rendered (the informer replaces objects on update); a WeakMap, so Services
 * that are gone leave nothing behind.
 */
export class ExternalClusterMemo {
  private fingerprint: string | null = null;
  private shares = new WeakMap<ServiceInput, ServiceShare>();

  shareOf(s: ServiceInput, context: NodeContext): ServiceShare {
    if (context.fingerprint !== this.fingerprint) {
      this.fingerprint = context.fingerprint;
      this.shares = new WeakMap();
    }
    let share = this.shares.get(s);
    if (!share) this.shares.set(s, (share = renderServiceShare(s, context)));
    return share;
  }
}

function renderServiceShare(s: ServiceInput, context: NodeContext): ServiceShare {
  const key = serviceKey(s);
  const share: ServiceShare = { key, pods: context.families.map(() => []), host: context.families.map(() => []), notes: [] };
  if (s.spec.type === 'ExternalName') return share;
  const notes = share.notes;
  const findings: Finding[] = [];
  // The helpers report into an array; moving their findings into the notes keeps the walk's order.
  const flush = () => notes.push(...findings.splice(0));
  const service = serviceRef(s);
  const targets = targetsOf(s, context.externalIPs, findings);
  flush();
  if (targets.length === 0) return share;
  if (isHeadless(s)) {
    notes.push({
      severity: 'info',
      fix: FIX,
      reason: 'Headless',
      message: `${key} is headless (no cluster IP), so ${targets.map((t) => formatAddress(t.address)).join(', ')} cannot be redirected to one`,
      service,
    });
    return share;
  }
  const ports = servicePorts(s, findings);
  const { ranges, restricted } = sourceRanges(s, findings);
  flush();

  for (const [f, family] of context.families.entries()) {
    const own = targets.filter((t) => t.address.family === family);
    if (own.length === 0) continue;
    const clusterIP = clusterIPFor(s, family);
    if (!clusterIP) {
      notes.push({
        severity: 'warning',
        fix: FIX,
        reason: 'NoClusterIPForFamily',
        message: `${key}: ${own.map((t) => formatAddress(t.address)).join(', ')} ${own.length === 1 ? 'is' : 'are'} ${FAMILY_LABEL[family]} but the Service has no ${FAMILY_LABEL[family]} cluster IP; not redirected`,
        service,
      });
      continue;
    }
    const podCidrs = context.pods.get(family) ?? [];
    const familyRanges = ranges.filter((r) => r.family === family);

    const limitedPods = minimalCidrs(podCidrs.flatMap((p) => familyRanges.map((r) => intersectCidrs(p, r)).filter((c): c is Cidr => c !== null)));
    if (restricted && own.some((t) => t.ingress) && podCidrs.length > 0 && limitedPods.length === 0) {
      notes.push({
        severity: 'info',
        fix: FIX,
        reason: 'SourceRangesExcludePods',
        message: `${key}: no ${FAMILY_LABEL[family]} pod CIDR overlaps loadBalancerSourceRanges, so pods' traffic to its ${FAMILY_LABEL[family]} load balancer IPs is left to kube-proxy`,
        service,
      });
    }

    const podRules = share.pods[f]!;
    const hostRules = share.host[f]!;
    for (const target of own) {
      const limited = target.ingress && restricted;
      const podSources: Array<Cidr | null> = limited ? limitedPods : podCidrs;
      const hostSources: Array<Cidr | null> = limited ? minimalCidrs(familyRanges) : [null];
      const destination = formatAddress(target.address);

      for (const port of ports) {
        notes.push({ claim: `${family} ${destination} ${port.protocol} ${port.port}`, destination, port });
        const text = port.name ? `${key}:${port.name}` : key;
        const make = (source: Cidr | null): RuleSpec[] => {
          const header = { source: source ? formatCidr(source) : undefined, destination, protocol: port.protocol };
          const matches = [comment(text), portMatch(port)];
          return [b.rule(header, matches, b.orMark(context.mark)), b.rule(header, matches, b.dnat(formatAddress(clusterIP), port.port))];
        };
        podRules.push(...podSources.flatMap(make));
        hostRules.push(...hostSources.flatMap(make));
      }
    }
  }
  return share;
}

/** The node-wide inputs of the fix, with the findings they give (once per render, not per Service). */
function nodeContext(input: ModelInput, families: IpFamily[], findings: Finding[]): NodeContext {
  const mark = masqueradeMark(input, findings);
  const pods = new Map<IpFamily, Cidr[]>();
  for (const family of families) {
    const p = podCidrsFor(input, family, findings);
    pods.set(family, p?.cidrs ?? []);
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
  const externalIPs = input.config.externalIPs;
  const fingerprint = JSON.stringify([families, mark, externalIPs, families.map((f) => pods.get(f)!.map(formatCidr))]);
  return { families, mark, pods, externalIPs, fingerprint };
}

function append<T>(to: T[], items: readonly T[]): void {
  for (let i = 0; i < items.length; i++) to.push(items[i]!);
}

/**
 * The fix's nat chains for every family. `memo` carries each Service's share over from the last
 * render (see ExternalClusterMemo); the output is the same with a fresh one.
 */
export function renderExternalCluster(
  input: ModelInput,
  families: IpFamily[],
  services: ServiceInput[],
  memo: ExternalClusterMemo = new ExternalClusterMemo(),
): { parts: Part[]; findings: Finding[] } {
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

  const context = nodeContext(input, families, findings);
  const podRules: RuleSpec[][] = families.map(() => []);
  const hostRules: RuleSpec[][] = families.map(() => []);
  // Which Service claimed each destination first depends on all Services and their order: never memoized.
  const claimed = new Map<string, string>();

  for (const s of services) {
    const share = memo.shareOf(s, context);
    for (const note of share.notes) {
      if (!('claim' in note)) {
        findings.push(note);
        continue;
      }
      const first = claimed.get(note.claim);
      if (first === undefined) {
        claimed.set(note.claim, share.key);
      } else if (first !== share.key) {
        findings.push({
          severity: 'warning',
          fix: FIX,
          reason: 'SharedAddressConflict',
          message: `${share.key} and ${first} both claim ${note.destination} ${note.port.protocol.toUpperCase()}/${note.port.port}; traffic goes to ${first}'s cluster IP`,
          service: serviceRef(s),
        });
      }
    }
    for (let f = 0; f < families.length; f++) {
      append(podRules[f]!, share.pods[f]!);
      append(hostRules[f]!, share.host[f]!);
    }
  }

  const parts: Part[] = families.map((family, f) => ({
    family,
    table: 'nat',
    chains: [
      { name: CHAINS.externalHost, rules: hostRules[f]! },
      { name: CHAINS.externalPods, rules: podRules[f]! },
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
