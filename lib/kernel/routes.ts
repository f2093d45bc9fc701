// Route lookups (`ip route get`) and network namespace ids (`ip netns list-id`), read through raw
// rtnetlink. Both only read: a lookup changes no route and netnsId never assigns an id.
import { isIP } from 'node:net';

import { kernelCall } from './errors.js';
import type { NetnsOption } from './links.js';
import { native, type RawRoute } from './native.js';

/** The route's type (RTN_*), as `ip route` names it. */
export type RouteType =
  | 'unspec'
  | 'unicast'
  | 'local'
  | 'broadcast'
  | 'anycast'
  | 'multicast'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'throw'
  | 'nat'
  | 'xresolve';

// RTN_* in order.
const ROUTE_TYPES: readonly RouteType[] = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];

export interface RouteLookup {
  family: 'ipv4' | 'ipv6';
  /** The address looked up, in canonical form. */
  destination: string;
  /** The output device, null when the route has none or it was removed since the lookup. */
  device: { index: number; name: string | null } | null;
  /** The next hop, null when the destination is on-link (how a CNI routes a local pod). */
  gateway: string | null;
  /** The gateway's family: an IPv4 route may have an IPv6 next hop (RTA_VIA). */
  gatewayFamily: 'ipv4' | 'ipv6' | null;
  /** RTA_PREFSRC: the source address the kernel would choose. */
  preferredSource: string | null;
  /** The routing table that matched (254 main, 255 local, ...), as RTM_F_LOOKUP_TABLE reports it. */
  table: number;
  type: RouteType;
  /** RTPROT_* of the route (2 kernel, 3 boot, 4 static, ...). */
  protocol: number;
  /** RT_SCOPE_* (0 universe, 253 link, 254 host). */
  scope: number;
  /** rtm_flags as returned (RTM_F_*, RTNH_F_*). */
  flags: number;
}

/** The names `ip route` uses for the reserved table ids; others are shown as numbers. */
export function tableName(table: number): string {
  switch (table) {
    case 253: return 'default';
    case 254: return 'main';
    case 255: return 'local';
    default: return String(table);
  }
}

function familyName(family: number): 'ipv4' | 'ipv6' | null {
  return family === 2 ? 'ipv4' : family === 10 ? 'ipv6' : null;
}

/**
 * One route lookup as the addon reports it, in the form `get` resolves to: empty strings and zero
 * indexes become null, numeric families and types become names. `get` calls it; callers of the
 * public API have no raw lookups of their own to pass.
 */
export function decodeRoute(raw: RawRoute): RouteLookup {
  return {
    family: familyName(raw.family) ?? 'ipv4',
    destination: raw.destination,
    device: raw.oif > 0 ? { index: raw.oif, name: raw.oifName || null } : null,
    gateway: raw.gateway || null,
    gatewayFamily: raw.gateway ? familyName(raw.gatewayFamily) : null,
    preferredSource: raw.prefsrc || null,
    table: raw.table,
    type: ROUTE_TYPES[raw.type] ?? 'unspec',
    protocol: raw.protocol,
    scope: raw.scope,
    flags: raw.flags,
  };
}

/**
 * The kernel's route for one IPv4 or IPv6 address in the namespace, as `ip route get ADDRESS`
 * shows it. Rejects with a TypeError for a string that is not an address, and with a KernelError
 * when no route leads there (`ENETUNREACH`; `EHOSTUNREACH` or `EACCES` for unreachable and
 * prohibit routes).
 */
export async function get(destination: string, options: NetnsOption = {}): Promise<RouteLookup> {
  if (isIP(destination) === 0) throw new TypeError(`routes.get: not an IPv4 or IPv6 address: ${JSON.stringify(destination)}`);
  return decodeRoute(await kernelCall(native().routeGet(destination, options.netns)));
}

/**
 * The id (NETNSA_NSID) that the namespace at `path` has as seen from `options.netns` (the caller's
 * namespace when absent), or null when it has none. An id is how a link names the namespace its
 * peer lives in (`Link.linkNetnsId`). Never assigns one. Rejects with a KernelError (`ENOENT` for a
 * missing file, `EINVAL` for one that is not a network namespace).
 */
export async function netnsId(path: string, options: NetnsOption = {}): Promise<number | null> {
  const id = await kernelCall(native().netnsId(path, options.netns));
  return id >= 0 ? id : null;
}
