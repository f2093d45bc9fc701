// The primary path of issue 6's pod → interfaces resolver: from the pod IP to the host-side
// interface and the pod's network namespace file, with no exec, no runtime client and no host PID
// view. Two CNI shapes are handled:
//
// Veth CNIs (ptp, calico, cilium in veth mode, kindnet) route each local pod's address on-link
// through the pod's host-side veth (`via: 'route'`). So:
//   1. the node's route lookup for the pod IP names that veth (a gateway means the pod is not here);
//   2. the veth's IFLA_LINK_NETNSID is the id the node namespace gave the namespace its peer is in;
//   3. the runtime's /var/run/netns files are asked for their id in the node namespace
//      (RTM_GETNSID, which never assigns one) and the one with that id is the pod's.
// The kernel assigns the id when the veth is created across namespaces, so it is there for every
// live pod.
//
// Bridge CNIs (bridge, flannel's cni0) put the pod CIDR on-link on the bridge, so the route names
// the bridge, not the pod (`via: 'bridge'`). Each pod is then one of the bridge's ports: a veth
// enslaved to it whose peer is in the pod's namespace. The runtime directory is scanned once to map
// every port's link-netnsid to its file, and in each such namespace the pod IP is looked up: the
// namespace where it is a *local* address is the pod's, and that port is its host-side interface.
// This beats reading the bridge's FDB: the FDB maps MACs to ports, so it would need the pod's MAC,
// which needs a neighbour entry for the pod IP in the node namespace — one that may not exist yet
// (nothing talked to the pod), may be stale (the IP went to a new pod with a new MAC) or may have
// aged out of the FDB. Whether an address is local in a namespace is exactly what "this pod has this
// IP" means, asked of the kernel with no traffic and no cache.
//
// When neither finds the pod, the /proc fallback (pod-netns.ts, through shaping-targets.ts) may.
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
  /**
   * How the host-side interface was found: the pod IP's route names it (veth CNIs), or the route
   * names a bridge and the pod IP is local behind one of its ports (bridge CNIs).
   */
  via: 'route' | 'bridge';
  /** The pod's host-side veth, in the node namespace: ingress is shaped here. */
  hostInterface: { index: number; name: string };
  /** The bridge the route names and `hostInterface` is a port of (`via: 'bridge'`), else null. */
  bridge: { index: number; name: string } | null;
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
  /** Routed out of a device that is neither a veth nor a bridge (a tunnel, the uplink). */
  | 'not-veth'
  /** A veth whose peer is in the same namespace (no link-netnsid). */
  | 'no-link-netnsid'
  /** No file under netnsDirs has the veth peer's namespace id. */
  | 'no-netns-file'
  /**
   * Routed out of a bridge, and no namespace behind its veth ports (those with a file under
   * netnsDirs) has the pod IP as a local address.
   */
  | 'not-on-bridge';

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
  const dirs = options.netnsDirs ?? DEFAULT_NETNS_DIRS;
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
  if (host.kind === 'bridge') return viaBridge(podIP, host, nodeLinks, route, dirs, at, notFound);
  if (host.kind !== 'veth') {
    return notFound('not-veth', `${podIP} is routed out of ${host.name}, a ${host.kind ?? 'non-virtual'} device, neither a veth nor a bridge`, route, hostInterface);
  }
  if (host.linkNetnsId === null || host.linkIndex === null) {
    return notFound('no-link-netnsid', `${host.name}'s peer is in the same namespace (no link-netnsid)`, route, hostInterface);
  }
  const peerNetnsId = host.linkNetnsId;

  const netnsPath = await findNetnsFileById(peerNetnsId, dirs, at);
  if (netnsPath === null) {
    return notFound('no-netns-file', `no file under ${dirs.join(', ')} is the namespace with id ${peerNetnsId} (${host.name}'s peer)`, route, hostInterface);
  }
  const podLinks = await links.list({ netns: netnsPath });
  const peer = podLinks.find((l) => l.index === host.linkIndex);
  return {
    kind: 'found',
    via: 'route',
    hostInterface: { index: host.index, name: host.name },
    bridge: null,
    peerNetnsId,
    netnsPath,
    podInterface: { index: host.linkIndex, name: peer?.name ?? null },
    route,
  };
}

// The bridge path: which of the bridge's veth ports leads to the namespace where podIP is local.
async function viaBridge(
  podIP: string,
  bridge: links.Link,
  nodeLinks: links.Link[],
  route: RouteLookup,
  dirs: string[],
  at: { netns?: string },
  notFound: (reason: PodInterfacesReason, detail: string, route: RouteLookup | null, host: PodInterfacesNotFound['hostInterface']) => PodInterfacesNotFound,
): Promise<PodInterfacesResult> {
  const bridgeInterface = { index: bridge.index, name: bridge.name, kind: bridge.kind };
  // Ports whose peer is in another namespace; a port's peer in the node namespace itself (or a
  // non-veth port: the uplink, a VXLAN) is no pod.
  const ports = nodeLinks.filter((l) => l.masterIndex === bridge.index && l.kind === 'veth' && l.linkNetnsId !== null && l.linkIndex !== null);
  if (ports.length === 0) {
    return notFound('not-on-bridge', `${podIP} is routed out of bridge ${bridge.name}, which has no veth port with a peer in another namespace`, route, bridgeInterface);
  }
  const files = await findNetnsFilesByIds(ports.map((p) => p.linkNetnsId!), dirs, at);
  const candidates = ports.filter((p) => files.has(p.linkNetnsId!));
  // One lookup per port, all at once: a node's bridge holds its pods (a hundred or so), each
  // lookup is a single netlink round trip in that namespace.
  const local = await Promise.all(candidates.map((p) => isLocalIn(podIP, files.get(p.linkNetnsId!)!)));
  const hit = candidates.findIndex((_, i) => local[i]);
  if (hit < 0) {
    const unmapped = ports.length - candidates.length;
    if (candidates.length === 0) {
      return notFound('no-netns-file', `${podIP} is routed out of bridge ${bridge.name}; no file under ${dirs.join(', ')} is the namespace of any of its ${ports.length} veth port(s)' peers`, route, bridgeInterface);
    }
    const skipped = unmapped > 0 ? ` (${unmapped} more port(s) lead to namespaces with no file under ${dirs.join(', ')})` : '';
    return notFound('not-on-bridge', `${podIP} is routed out of bridge ${bridge.name}, and it is not a local address behind any of its ${candidates.length} veth port(s)${skipped}`, route, bridgeInterface);
  }
  const port = candidates[hit]!;
  const netnsPath = files.get(port.linkNetnsId!)!;
  const podLinks = await links.list({ netns: netnsPath });
  const peer = podLinks.find((l) => l.index === port.linkIndex);
  return {
    kind: 'found',
    via: 'bridge',
    hostInterface: { index: port.index, name: port.name },
    bridge: { index: bridge.index, name: bridge.name },
    peerNetnsId: port.linkNetnsId!,
    netnsPath,
    podInterface: { index: port.linkIndex!, name: peer?.name ?? null },
    route,
  };
}

// Whether the namespace at `netns` has `address` as one of its own (a 'local' route): the pod's
// namespace does, the node's and every other pod's do not.
async function isLocalIn(address: string, netns: string): Promise<boolean> {
  try {
    return (await routes.get(address, { netns })).type === 'local';
  } catch (error) {
    // No route at all there, or the namespace went away since the directory was read.
    if (isKernelError(error) && (NO_ROUTE_CODES.has(error.code) || NOT_A_NETNS_CODES.has(error.code))) return false;
    throw error;
  }
}

/**
 * The first file (directories in order, names sorted) whose namespace has id `nsid` as seen from
 * `at.netns`, or null. The kernel answers per file; a file that is not a namespace is skipped.
 */
export async function findNetnsFileById(nsid: number, dirs: string[], at: { netns?: string } = {}): Promise<string | null> {
  return (await findNetnsFilesByIds([nsid], dirs, at)).get(nsid) ?? null;
}

/**
 * For each of `nsids`, the first file (directories in order, names sorted) whose namespace has that
 * id as seen from `at.netns`; ids no file has are absent from the map. Each directory is read and
 * each file asked once, however many ids are wanted; directories after the one where the last
 * wanted id turned up are not read.
 */
export async function findNetnsFilesByIds(nsids: Iterable<number>, dirs: string[], at: { netns?: string } = {}): Promise<Map<number, string>> {
  const wanted = new Set(nsids);
  const found = new Map<number, string>();
  for (const dir of dirs) {
    if (found.size === wanted.size) break;
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
    names.forEach((name, i) => {
      const id = ids[i];
      if (id !== null && id !== undefined && wanted.has(id) && !found.has(id)) found.set(id, join(dir, name));
    });
  }
  return found;
}
