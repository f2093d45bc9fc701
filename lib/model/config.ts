// The node fixes' configuration from the environment, with network-node-manager's variable names
// and defaults, so its DaemonSet env carries over unchanged. Every bad value is reported (all of
// them at once, each naming its variable and the accepted form) so the agent can refuse to start
// instead of guessing.
import type { IpFamily } from '../kernel/netfilter/index.js';

import { formatAddress, formatCidr, hostBitsSet, parseCidr } from './addresses.js';
import { DEFAULT_MASQUERADE_BIT } from './external-cluster.js';
import { FAMILY_LABEL, FAMILY_ORDER } from './families.js';
import type { FixesConfig } from './types.js';

export type Env = Record<string, string | undefined>;

export const DEFAULT_DNS_SERVICE = { namespace: 'kube-system', name: 'kube-dns' } as const;

// A namespace is a DNS-1123 label; a Service name a DNS-1035 label (starts with a letter).
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SERVICE_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** Unset and empty both mean "the default", as in network-node-manager. */
function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function boolean(env: Env, name: string, fallback: boolean, errors: string[]): boolean {
  const v = value(env, name);
  if (v === undefined) return fallback;
  const lower = v.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  errors.push(`${name}=${JSON.stringify(env[name])}: expected true or false (any letter case; default ${fallback})`);
  return fallback;
}

function dnsServices(env: Env, errors: string[]): FixesConfig['dnsServices'] {
  const name = 'RULE_NOT_TRACK_DNS_SERVICES';
  const v = value(env, name);
  if (v === undefined) return [{ ...DEFAULT_DNS_SERVICE }];
  const out = new Map<string, { namespace: string; name: string }>();
  for (const entry of v.split(',').map((e) => e.trim())) {
    const parts = entry.split('/');
    const [ns, svc] = parts.length === 1 ? [DEFAULT_DNS_SERVICE.namespace, parts[0] ?? ''] : [parts[0] ?? '', parts[1] ?? ''];
    const ok = parts.length <= 2 && ns.length <= 63 && svc.length <= 63 && NAMESPACE.test(ns) && SERVICE_NAME.test(svc);
    if (!ok) {
      errors.push(
        `${name}=${JSON.stringify(env[name])}: ${JSON.stringify(entry)} is not a Service; expected a comma-separated list of <name> (in kube-system) or <namespace>/<name>, lower-case DNS labels`,
      );
      continue;
    }
    out.set(`${ns}/${svc}`, { namespace: ns, name: svc });
  }
  return [...out.values()];
}

function netStack(env: Env, errors: string[]): IpFamily[] {
  const name = 'NET_STACK';
  const v = value(env, name);
  if (v === undefined) return ['ipv4'];
  const words = v.toLowerCase().replace(/\s+/g, '').split(',');
  if (!words.every((w): w is IpFamily => w === 'ipv4' || w === 'ipv6')) {
    errors.push(`${name}=${JSON.stringify(env[name])}: expected ipv4, ipv6 or ipv4,ipv6 (default ipv4)`);
    return ['ipv4'];
  }
  return FAMILY_ORDER.filter((f) => words.includes(f));
}

function podCidrs(env: Env, family: IpFamily, errors: string[]): string[] | undefined {
  const name = family === 'ipv4' ? 'POD_CIDR_IPV4' : 'POD_CIDR_IPV6';
  const example = family === 'ipv4' ? '10.244.0.0/16' : 'fd00:10:244::/56';
  const v = value(env, name);
  if (v === undefined) return undefined;
  const out: string[] = [];
  for (const text of v.split(',').map((e) => e.trim())) {
    const c = parseCidr(text, true);
    if (c && c.family === family && text.includes('/')) {
      out.push(`${formatAddress(c)}/${c.prefix}`);
      continue;
    }
    const loose = hostBitsSet(text);
    const hint = loose && loose.family === family && text.includes('/') ? ` (host bits set: did you mean ${formatCidr(loose)}?)` : '';
    errors.push(`${name}=${JSON.stringify(env[name])}: ${JSON.stringify(text)} is not an ${FAMILY_LABEL[family]} CIDR${hint}; expected a prefix such as ${example} (comma-separated for several)`);
  }
  return out;
}

function masqueradeBit(env: Env, errors: string[]): number {
  const name = 'MASQUERADE_BIT';
  const v = value(env, name);
  if (v === undefined) return DEFAULT_MASQUERADE_BIT;
  if (/^\d{1,2}$/.test(v) && Number(v) <= 31) return Number(v);
  errors.push(`${name}=${JSON.stringify(env[name])}: expected an integer from 0 to 31, kube-proxy's --iptables-masquerade-bit (default ${DEFAULT_MASQUERADE_BIT}, mark 0x4000)`);
  return DEFAULT_MASQUERADE_BIT;
}

/**
 * The fixes' configuration from these variables (booleans accept `true` or `false` in any letter
 * case; unset or empty means the default):
 * RULE_DROP_INVALID_INPUT_ENABLE (default true), RULE_EXTERNAL_CLUSTER_ENABLE (false),
 * RULE_EXTERNAL_IPS_ENABLE (false; also redirect spec.externalIPs), RULE_NOT_TRACK_DNS_ENABLE (false),
 * RULE_NOT_TRACK_DNS_SERVICES (kube-dns; comma list of name or namespace/name, namespace kube-system
 * by default), POD_CIDR_IPV4 / POD_CIDR_IPV6 (comma list of prefixes; unset: the Node's
 * spec.podCIDRs), NET_STACK (ipv4, ipv6 or ipv4,ipv6; default ipv4), MASQUERADE_BIT (0-31, default 14).
 */
export function parseFixesConfig(env: Env): { config: FixesConfig } | { errors: string[] } {
  const errors: string[] = [];
  const config: FixesConfig = {
    dropInvalidInput: boolean(env, 'RULE_DROP_INVALID_INPUT_ENABLE', true, errors),
    externalCluster: boolean(env, 'RULE_EXTERNAL_CLUSTER_ENABLE', false, errors),
    externalIPs: boolean(env, 'RULE_EXTERNAL_IPS_ENABLE', false, errors),
    notrackDns: boolean(env, 'RULE_NOT_TRACK_DNS_ENABLE', false, errors),
    dnsServices: dnsServices(env, errors),
    families: netStack(env, errors),
    podCidrs: {},
    masqueradeBit: masqueradeBit(env, errors),
  };
  for (const family of FAMILY_ORDER) {
    const cidrs = podCidrs(env, family, errors);
    if (cidrs !== undefined) config.podCidrs[family] = cidrs;
  }
  return errors.length > 0 ? { errors } : { config };
}
