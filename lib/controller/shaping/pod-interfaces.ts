// The primary path of issue 6's pod → interfaces resolver: from the pod IP to the host-side veth
// and the pod's network namespace file, with no exec, no runtime client and no host PID view.
//
// A veth CNI (ptp, calico, cilium in veth mode, kindnet) routes each local pod's address on-link
// through the pod's host-side veth. So:
//   1. the node's route lookup for the pod IP names that veth (a gateway means the pod is not here);
//   2. the veth's IFLA_LINK_NETNSID is the id the node namespace gave the namespace its peer is in;
//   3. the runtime's /var/run/netns files are asked for their id in the node namespace
//      (RTM_GETNSID, which never assigns one) and the one with that id is the pod's.
// The kernel assigns the id when the veth is created across namespaces, so it is there for every
// live pod. Bridge CNIs route the pod CIDR to the bridge instead; that case (the bridge FDB) is not
// handled here and comes back as `not-veth` with kind `bridge`; the /proc fallback (pod-netns.ts)
// covers it meanwhile.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { isKernelError } from '../../kernel/errors.js';
import * as links from '../../kernel/links.js';
import * as routes from '../../kernel/routes.js';
import type { RouteLookup } from '../../kernel/routes.js';
import { DEFAULT_NETNS_DIRS } from './pod-netns.js';

export interface ResolvePodInterfacesOptions {
  /** The node's network namespace (where the pod routes live); the caller's own when absent. */
  netns?: string;
  /** Directories holding the runtime's namespace files; searched in order. */
  netnsDirs?: string[];
}

export interface PodInterfacesFound {
  kind: 'found';
  /** The pod's host-side veth, in the node namespace: ingress is shaped here. */
  hostInterface: { index: number; name: string };
  /** The id the node namespace gives the pod's namespace (the veth's link-netnsid). */
  peerNetnsId: number;
  /** The runtime's file for the pod's namespace. */
  netnsPath: string;
  /** The veth's peer inside the pod namespace (eth0 usually): egress is shaped here. Name null if it vanished. */
  podInterface: { index: number; name: string | null };
  route: RouteLookup;
}

export type PodInterfacesReason =
  /** No route to the pod IP at all. */
  | 'no-route'
  /** A local, broadcast, blackhole, ... route: not a pod behind a device (a hostNetwork pod's IP is local). */
  | 'not-unicast'
  /** Routed through a gateway: the pod lives on another node. */
  | 'via-gateway'
  /** Routed out of a device that is not a veth (a bridge, a tunnel, the uplink). */
  | 'not-veth'
  /** A veth whose peer is in the same namespace (no link-netnsid). */
  | 'no-link-netnsid'
  /** No file under netnsDirs has the veth peer's namespace id. */
  | 'no-netns-file';

export interface PodInterfacesNotFound {
  kind: 'not-found';
  reason: PodInterfacesReason;
  /** One sentence for logs and Events. */
  detail: string;
  route: RouteLookup | null;
  hostInterface: { index: number; name: string; kind: string | null } | null;
}

export type PodInterfacesResult = PodInterfacesFound | PodInterfacesNotFound;

// What a route lookup fails with when nothing (or an unreachable/prohibit route) covers the address.
const NO_ROUTE_CODES = new Set(['ENETUNREACH', 'EHOSTUNREACH', 'EACCES']);
// A file removed while listing, or one that is not (any more) a namespace: neither is the pod's.
const NOT_A_NETNS_CODES = new Set(['ENOENT', 'EINVAL', 'EACCES', 'EPERM']);

export async function resolvePodInterfaces(podIP: string, options: ResolvePodInterfacesOptions = {}): Promise<PodInterfacesResult> {
  const at = options.netns === undefined ? {} : { netns: options.netns };
  const notFound = (reason: PodInterfacesReason, detail: string, route: RouteLookup | null, host: PodInterfacesNotFound['hostInterface'] = null): PodInterfacesNotFound => ({
    kind: 'not-found',
    reason,
    detail,
    route,
    hostInterface: host,
  });

  let route: RouteLookup;
  try {
    route = await routes.get(podIP, at);
  } catch (error) {
    if (isKernelError(error) && NO_ROUTE_CODES.has(error.code)) return notFound('no-route', `no route to ${podIP} (${error.code})`, null);
    throw error;
  }
  if (route.type !== 'unicast') return notFound('not-unicast', `${podIP} has a ${route.type} route, not one to a pod's device`, route);
  if (route.gateway !== null) return notFound('via-gateway', `${podIP} is routed via ${route.gateway}: not a pod on this node`, route);
  if (route.device === null) return notFound('no-route', `the route to ${podIP} has no output device`, route);

  const nodeLinks = await links.list(at);
  const host = nodeLinks.find((l) => l.index === route.device!.index);
  // The device went away between the lookup and the listing: the pod is being torn down.
  if (!host) return notFound('no-route', `the device (index ${route.device.index}) routing ${podIP} no longer exists`, route);
  const hostInterface = { index: host.index, name: host.name, kind: host.kind };
  if (host.kind !== 'veth') {
    return notFound('not-veth', `${podIP} is routed out of ${host.name}, a ${host.kind ?? 'non-virtual'} device, not a veth`, route, hostInterface);
  }
  if (host.linkNetnsId === null || host.linkIndex === null) {
    return notFound('no-link-netnsid', `${host.name}'s peer is in the same namespace (no link-netnsid)`, route, hostInterface);
  }
  const peerNetnsId = host.linkNetnsId;

  const netnsPath = await findNetnsFileById(peerNetnsId, options.netnsDirs ?? DEFAULT_NETNS_DIRS, at);
  if (netnsPath === null) {
    return notFound('no-netns-file', `no file under ${(options.netnsDirs ?? DEFAULT_NETNS_DIRS).join(', ')} is the namespace with id ${peerNetnsId} (${host.name}'s peer)`, route, hostInterface);
  }
  const podLinks = await links.list({ netns: netnsPath });
  const peer = podLinks.find((l) => l.index === host.linkIndex);
  return {
    kind: 'found',
    hostInterface: { index: host.index, name: host.name },
    peerNetnsId,
    netnsPath,
    podInterface: { index: host.linkIndex, name: peer?.name ?? null },
    route,
  };
}

/**
 * The first file (directories in order, names sorted) whose namespace has id `nsid` as seen from
 * `at.netns`, or null. The kernel answers per file; a file that is not a namespace is skipped.
 */
export async function findNetnsFileById(nsid: number, dirs: string[], at: { netns?: string } = {}): Promise<string | null> {
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES') continue;
      throw error;
    }
    const ids = await Promise.all(
      names.map(async (name) => {
        try {
          return await routes.netnsId(join(dir, name), at);
        } catch (error) {
          if (isKernelError(error) && NOT_A_NETNS_CODES.has(error.code)) return null;
          throw error;
        }
      }),
    );
    const hit = names.findIndex((_, i) => ids[i] === nsid);
    if (hit >= 0) return join(dir, names[hit]!);
  }
  return null;
}
