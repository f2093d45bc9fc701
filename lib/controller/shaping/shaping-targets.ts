// What traffic shaping acts on for one pod: the named interface inside the pod's network namespace
// (egress) and, when it has one, its host-side peer in the node namespace (ingress).
//
// The pod's namespace is found from its IP first (pod-interfaces.ts: the route names a veth, or a
// bridge one of whose ports leads to the namespace where the IP is local); failing that, from its
// processes under /proc (pod-netns.ts), for pods with no IP yet, CNIs neither path understands, and
// interfaces the pod IP is not on. Inside the namespace the interface is looked up by name (eth0,
// or a multus attachment's net1, ...). Its host peer is the veth in the node namespace whose
// link-netnsid is the pod namespace's id there and whose IFLA_LINK is the interface's index — that
// pair names one device, so eth0 and net1 each get their own. Devices with no peer in the node
// namespace (macvlan, ipvlan, an SR-IOV VF, a veth into some other namespace) get none, and say why.
//
// The controller caches the result per pod and asks stillValid on each reconcile: the namespace is
// opened and compared by identity (dev, inode) with the one resolved — a /proc/<pid>/ns/net path
// names another namespace once that pid is reused — and the two devices are checked by index, name
// and peer. Anything changed ⇒ resolve again.
import { open } from 'node:fs/promises';

import { isKernelError } from '../../kernel/errors.js';
import * as links from '../../kernel/links.js';
import * as routes from '../../kernel/routes.js';
import { resolvePodInterfaces } from './pod-interfaces.js';
import { findPodNetns, type NetnsId } from './pod-netns.js';

export interface ShapingTargets {
  /** How the pod's namespace was found. */
  via: 'route' | 'bridge' | 'proc';
  /** A path that opens the pod's network namespace (runtime netns file, or /proc/<pid>/ns/net for 'proc'). */
  netnsPath: string;
  /**
   * The namespace `netnsPath` opened when resolved (nsfs device and inode): stillValid compares it,
   * since a /proc/<pid>/ns/net path names another namespace once the pid is reused.
   */
  netnsIdentity: NetnsId;
  /** The id the node namespace gives the pod's namespace (link-netnsid of veths into it); null when it has none. */
  podNetnsId: number | null;
  /** The interface (by the annotation's name, default eth0) inside the pod namespace: egress is shaped here. */
  podDevice: { index: number; name: string; kind: string | null };
  /**
   * Its host-side peer in the node namespace (ingress is shaped on it), or null when it has none there
   * (macvlan/ipvlan/sriov, or a veth whose peer is elsewhere) — with `hostDetail` saying why.
   */
  hostDevice: { index: number; name: string } | null;
  hostDetail: string | null;
}

export type ShapingTargetsResult = { kind: 'found'; targets: ShapingTargets } | { kind: 'not-found'; detail: string };

export interface ResolveShapingTargetsOptions {
  /** The node's network namespace (where pod routes and host-side veths live); the agent's own when absent. */
  netns?: string;
  /** Directories holding the runtime's namespace files; searched in order. */
  netnsDirs?: string[];
  /** Where the host's procfs is mounted, for the /proc fallback. */
  procRoot?: string;
  /**
   * The node's namespace identity, to tell a hostNetwork pod apart in the /proc fallback. Default:
   * that of `netns` when given, else findPodNetns's own default (pid 1's namespace).
   */
  hostNetns?: NetnsId;
  /** The /proc fallback (needs hostPID and CAP_SYS_PTRACE); on unless false. */
  useProc?: boolean;
}

export interface StillValidOptions {
  /** The node's network namespace, as given to resolveShapingTargets. */
  netns?: string;
}

// A namespace path that is not there (any more): a runtime file removed, a /proc/<pid> gone.
const OPEN_GONE_CODES = new Set(['ENOENT', 'ESRCH', 'ENOTDIR']);
// What the kernel answers RTM_GETNSID with for such a path, or for a file that is not a namespace
// (a runtime file whose bind mount is gone).
const NETNS_GONE_CODES = new Set(['ENOENT', 'ESRCH', 'EINVAL']);

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

/** The pod's open namespace: `path` names it for as long as `close` has not been called. */
interface OpenNetns {
  path: string;
  identity: NetnsId;
  close(): Promise<void>;
}

// Opens a namespace path and names it by fd, so that every later call reaches this very namespace
// even if the path stops naming it meanwhile (a pid reused, a runtime file removed).
async function openNetns(path: string): Promise<OpenNetns | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (OPEN_GONE_CODES.has(errorCode(error) ?? '')) return null;
    throw error;
  }
  const st = await handle.stat();
  return { path: `/proc/self/fd/${handle.fd}`, identity: { dev: st.dev, ino: st.ino }, close: () => handle.close() };
}

/**
 * The pod's interface `interfaceName` and its host-side peer, and the namespace path to reach the
 * former by. Not-found (with one sentence why) when the pod's namespace cannot be found, is the
 * node's own, or has no interface of that name.
 */
export async function resolveShapingTargets(pod: { ip: string | null; uid: string }, interfaceName: string, options: ResolveShapingTargetsOptions = {}): Promise<ShapingTargetsResult> {
  const at = options.netns === undefined ? {} : { netns: options.netns };
  const misses: string[] = [];

  // 1. From the pod IP (veth route or bridge port).
  if (pod.ip !== null && pod.ip !== '') {
    const r = await resolvePodInterfaces(pod.ip, { ...at, ...(options.netnsDirs ? { netnsDirs: options.netnsDirs } : {}) });
    if (r.kind === 'found') {
      const ns = await openNetns(r.netnsPath);
      try {
        // The file must still be the namespace with the veth's id: it may have gone, or been
        // replaced, since it was matched (the pod is going; the /proc fallback gets its say).
        if (ns !== null && (await idIn(ns.path, at)) === r.peerNetnsId) return await targetsIn(ns, r.netnsPath, r.via, r.peerNetnsId, interfaceName, at);
      } finally {
        await ns?.close();
      }
      misses.push(`${pod.ip}: the namespace file ${r.netnsPath} went away or changed while it was being read`);
    } else {
      misses.push(`${pod.ip}: ${r.detail}`);
    }
  } else {
    misses.push('the pod has no IP');
  }

  // 2. From the pod's processes.
  if (options.useProc === false) return { kind: 'not-found', detail: `${misses.join('; ')} (the /proc fallback is off)` };
  const hostNetns = options.hostNetns ?? (options.netns !== undefined ? await identityOf(options.netns) : undefined);
  const p = await findPodNetns(pod.uid, {
    keepOpen: true,
    ...(options.procRoot !== undefined ? { procRoot: options.procRoot } : {}),
    ...(hostNetns !== undefined ? { hostNetns } : {}),
  });
  if (p.kind === 'host-network') return { kind: 'not-found', detail: `${misses.join('; ')}; pod ${pod.uid}'s process ${p.pid} is in the node's network namespace (hostNetwork): nothing of its own to shape` };
  if (p.kind === 'not-found') {
    const skipped = p.raced + p.denied + p.failed > 0 ? `, ${p.raced} exited, ${p.denied} unreadable, ${p.failed} failed${p.error ? ` (${p.error})` : ''}` : '';
    return { kind: 'not-found', detail: `${misses.join('; ')}; no live process of pod ${pod.uid} under ${options.procRoot ?? '/proc'} (${p.scanned} scanned, ${p.matched} in its cgroup${skipped})` };
  }
  // keepOpen: the namespace the pid was verified in, reachable with no pid involved.
  const handle = p.handle;
  const ns: OpenNetns | null = handle
    ? { path: `/proc/self/fd/${handle.fd}`, identity: { dev: p.netnsDev, ino: p.netnsInode }, close: () => handle.close() }
    : await openNetns(p.path);
  if (ns === null) return { kind: 'not-found', detail: `${misses.join('; ')}; pod ${pod.uid}'s process ${p.pid} exited before its namespace could be read` };
  try {
    // A namespace with no id in the node's has no veth peer there: the kernel gives a namespace an
    // id in another as soon as a veth joins the two, so null ⇒ targetsIn will find no host device.
    return await targetsIn(ns, p.path, 'proc', await idIn(ns.path, at), interfaceName, at);
  } finally {
    await ns.close();
  }
}

async function identityOf(path: string): Promise<NetnsId> {
  const ns = await openNetns(path);
  if (ns === null) throw new Error(`cannot open the node's network namespace ${path}`);
  await ns.close();
  return ns.identity;
}

// The id the node namespace gives the namespace at `path`; null when it has none or `path` is gone.
async function idIn(path: string, at: { netns?: string }): Promise<number | null> {
  try {
    return await routes.netnsId(path, at);
  } catch (error) {
    if (isKernelError(error) && NETNS_GONE_CODES.has(error.code)) return null;
    throw error;
  }
}

async function targetsIn(ns: OpenNetns, netnsPath: string, via: ShapingTargets['via'], podNetnsId: number | null, interfaceName: string, at: { netns?: string }): Promise<ShapingTargetsResult> {
  const podLinks = await links.list({ netns: ns.path });
  const dev = podLinks.find((l) => l.name === interfaceName);
  if (!dev) {
    return { kind: 'not-found', detail: `the pod's namespace (${netnsPath}) has no interface ${interfaceName}; it has ${podLinks.map((l) => l.name).join(', ') || 'none'}` };
  }
  const podDevice = { index: dev.index, name: dev.name, kind: dev.kind };
  const found = (hostDevice: ShapingTargets['hostDevice'], hostDetail: string | null): ShapingTargetsResult => ({
    kind: 'found',
    targets: { via, netnsPath, netnsIdentity: ns.identity, podNetnsId, podDevice, hostDevice, hostDetail },
  });

  if (podNetnsId !== null) {
    const peer = (await links.list(at)).find((l) => isPeerOf(l, podNetnsId, dev.index));
    if (peer) return found({ index: peer.index, name: peer.name }, null);
  }
  return found(null, noPeerDetail(dev, podNetnsId));
}

function isPeerOf(hostLink: links.Link, podNetnsId: number, podIndex: number): boolean {
  return hostLink.kind === 'veth' && hostLink.linkNetnsId === podNetnsId && hostLink.linkIndex === podIndex;
}

function noPeerDetail(dev: links.Link, podNetnsId: number | null): string {
  const what = `${dev.name} is a ${dev.kind ?? 'hardware (or VF)'} device`;
  if (dev.kind === 'veth') {
    if (dev.linkNetnsId === null) return `${dev.name} is a veth whose peer is in the pod's namespace too: no host-side device to shape ingress on`;
    if (podNetnsId === null) return `${dev.name} is a veth, but the pod's namespace has no id in the node namespace, so its peer is not there: no host-side device to shape ingress on`;
    return `${dev.name} is a veth whose peer (index ${dev.linkIndex ?? '?'}) is in a namespace other than the node's: no host-side device to shape ingress on`;
  }
  const lower = dev.linkIndex !== null ? ` on a lower device (index ${dev.linkIndex})` : '';
  return `${what}${lower} with no peer in the node namespace: ingress can only be shaped inside the pod`;
}

/**
 * Whether cached targets still describe live kernel objects: the namespace path still opens the
 * same namespace, the pod device still has its index and name there, and the host device (if any)
 * still has its index and name and is still the veth whose peer is that pod device. False means
 * resolve again; errors other than "gone" are thrown.
 */
export async function stillValid(targets: ShapingTargets, options: StillValidOptions = {}): Promise<boolean> {
  const at = options.netns === undefined ? {} : { netns: options.netns };
  const ns = await openNetns(targets.netnsPath);
  if (ns === null) return false;
  try {
    if (ns.identity.dev !== targets.netnsIdentity.dev || ns.identity.ino !== targets.netnsIdentity.ino) return false;
    const dev = (await links.list({ netns: ns.path })).find((l) => l.index === targets.podDevice.index);
    if (!dev || dev.name !== targets.podDevice.name) return false;
    if (targets.hostDevice === null) return true;
    // The id is asked again: ids of dead namespaces are reused, and the host veth must point at this one.
    const podNetnsId = await idIn(ns.path, at);
    if (podNetnsId === null) return false;
    const host = (await links.list(at)).find((l) => l.index === targets.hostDevice!.index);
    return host !== undefined && host.name === targets.hostDevice.name && isPeerOf(host, podNetnsId, dev.index);
  } finally {
    await ns.close();
  }
}
