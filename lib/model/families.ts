// Which family an address belongs to decides which family's rules it may appear in: an address is
// classified by parsing it, never by the Service's spec.ipFamilies (older clusters leave that empty,
// and network-node-manager #10 gave an IPv6 address an IPv4 rule by trusting the cluster IP's family).
import type { IpFamily } from '../kernel/netfilter/index.js';

import { type Address, type Cidr, compareCidrs, formatCidr, parseAddress, parseCidr, uniqueAddresses } from './addresses.js';
import type { Finding, FixesConfig, ModelInput, ServiceInput } from './types.js';

/** The order tables are listed in, whatever order NET_STACK named the families in. */
export const FAMILY_ORDER: readonly IpFamily[] = ['ipv4', 'ipv6'];

export const FAMILY_LABEL: Readonly<Record<IpFamily, string>> = { ipv4: 'IPv4', ipv6: 'IPv6' };

export function familiesOf(config: FixesConfig): IpFamily[] {
  return FAMILY_ORDER.filter((f) => config.families.includes(f));
}

export function serviceKey(s: ServiceInput): string {
  return `${s.metadata.namespace}/${s.metadata.name}`;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** namespace/name order. */
export function compareRefs(a: { namespace: string; name: string }, b: { namespace: string; name: string }): number {
  return compareText(a.namespace, b.namespace) || compareText(a.name, b.name);
}

/**
 * By namespace, then name. The API server never lists one name twice, but a model that must not
 * depend on input order also orders two such objects by their whole content.
 */
export function compareServices(a: ServiceInput, b: ServiceInput): number {
  return compareRefs(a.metadata, b.metadata) || compareText(JSON.stringify(a), JSON.stringify(b));
}

/** clusterIP "None" (or none at all): no virtual IP to DNAT to, the Service is headless. */
export function isHeadless(s: ServiceInput): boolean {
  const primary = s.spec.clusterIP ?? s.spec.clusterIPs?.[0] ?? '';
  return primary === '' || primary === 'None';
}

function clusterIPTexts(s: ServiceInput): string[] {
  return [...(s.spec.clusterIPs ?? []), ...(s.spec.clusterIP ? [s.spec.clusterIP] : [])];
}

/** The Service's cluster IPs of one family (dual-stack Services have one per family). */
export function clusterIPs(s: ServiceInput, family: IpFamily): Address[] {
  return uniqueAddresses(clusterIPTexts(s).map((t) => parseAddress(t)).filter((a): a is Address => a !== null && a.family === family));
}

/** The cluster IP external traffic of this family is sent to: the first listed of that family. */
export function clusterIPFor(s: ServiceInput, family: IpFamily): Address | null {
  for (const t of clusterIPTexts(s)) {
    const a = parseAddress(t);
    if (a && a.family === family) return a;
  }
  return null;
}

export interface PodCidrs {
  cidrs: Cidr[];
  /** Where they came from, for messages. */
  from: string;
}

/**
 * This family's pod CIDRs: POD_CIDR_IPV4/6 when configured, else this Node's spec.podCIDRs (or
 * the older single spec.podCIDR). Null when there are none; invalid ones become findings.
 */
export function podCidrsFor(input: ModelInput, family: IpFamily, findings: Finding[]): PodCidrs | null {
  const configured = input.config.podCidrs[family] ?? [];
  const variable = family === 'ipv4' ? 'POD_CIDR_IPV4' : 'POD_CIDR_IPV6';
  let texts: string[];
  let from: string;
  if (configured.length > 0) {
    texts = configured;
    from = variable;
  } else {
    const spec = input.node?.spec;
    texts = spec?.podCIDRs?.length ? spec.podCIDRs : spec?.podCIDR ? [spec.podCIDR] : [];
    from = `node ${input.node?.metadata.name ?? '(unknown)'} spec.podCIDRs`;
  }
  const cidrs: Cidr[] = [];
  for (const text of texts) {
    const c = parseCidr(text);
    if (!c) {
      findings.push({ severity: 'warning', fix: 'config', reason: 'InvalidPodCIDR', message: `${from}: ${JSON.stringify(text)} is not a CIDR; ignored` });
    } else if (c.family === family) {
      cidrs.push(c);
    } else if (configured.length > 0) {
      findings.push({
        severity: 'warning',
        fix: 'config',
        reason: 'InvalidPodCIDR',
        message: `${variable}: ${formatCidr(c)} is not an ${FAMILY_LABEL[family]} CIDR; ignored`,
      });
    }
  }
  if (cidrs.length === 0) return null;
  const sorted = cidrs.sort(compareCidrs);
  return { cidrs: sorted.filter((c, i) => i === 0 || compareCidrs(sorted[i - 1]!, c) !== 0), from };
}
