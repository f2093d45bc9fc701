// Network links (interfaces): read through libnl; bridges and VXLAN devices created, changed,
// removed and their kind-specific configuration read back through raw rtnetlink.
import { isIP } from 'node:net';

import { kernelCall } from './errors.js';
import { native, type RawLink, type RawLinkDetails, type RawLinkRequest } from './native.js';

/** Options shared by every kernel call. */
export interface NetnsOption {
  /** Path of a network namespace (`/var/run/netns/NAME`, `/proc/PID/ns/net`); the caller's own when absent. */
  netns?: string;
}

export type OperState = 'UNKNOWN' | 'NOTPRESENT' | 'DOWN' | 'LOWERLAYERDOWN' | 'TESTING' | 'DORMANT' | 'UP';

export interface Link {
  index: number;
  name: string;
  /** `IFLA_INFO_KIND` ("bridge", "veth", "vxlan", ...); null for loopback and hardware devices. */
  kind: string | null;
  /** The kind of the master this link is a port of ("bridge"), if any. */
  slaveKind: string | null;
  mtu: number;
  /** Flag names in the order and spelling `ip link` uses (`NO-CARRIER` included, `RUNNING` not). */
  flags: string[];
  /** The `IFF_*` bits as the kernel reports them. */
  rawFlags: number;
  /** Administratively up (`IFF_UP`). */
  up: boolean;
  operstate: OperState;
  txqlen: number;
  /** Name of the master (bridge, bond, VRF) this link is enslaved to. */
  master: string | null;
  masterIndex: number | null;
  /** `IFLA_LINK`: the peer or lower device's index, which may be in another namespace. */
  linkIndex: number | null;
  /** The namespace id (in this namespace's view) of where `linkIndex` lives, if elsewhere. */
  linkNetnsId: number | null;
  alias: string | null;
  /** Link-layer address, lower-case hex with colons. */
  address: string | null;
  /** A bridge's own configuration (`IFLA_INFO_DATA`); present only when `kind` is "bridge". */
  bridge?: BridgeInfo;
  /** A VXLAN device's configuration (`IFLA_INFO_DATA`); present only when `kind` is "vxlan". */
  vxlan?: VxlanInfo;
}

export interface BridgeInfo {
  /** Kernel STP (`IFLA_BR_STP_STATE`). */
  stp: boolean;
  /**
   * br_netfilter's per-bridge switches (`IFLA_BR_NF_CALL_IPTABLES` / `_IP6TABLES`): bridged IPv4 /
   * IPv6 traffic passes through iptables / ip6tables. null when the kernel does not report them
   * (built without CONFIG_BRIDGE_NETFILTER; it then also ignores them when set).
   */
  nfCallIptables: boolean | null;
  nfCallIp6tables: boolean | null;
}

export interface VxlanInfo {
  vni: number;
  /** Destination UDP port. */
  port: number;
  /** UDP source ports; null when the kernel picks from the namespace's local port range. */
  sourcePortRange: { min: number; max: number } | null;
  /** Source address of the outer packets (IPv4 or IPv6), null when the route chooses. */
  local: string | null;
  /** Remote unicast VTEP or multicast group for unknown destinations, null when none. */
  group: string | null;
  /** Name of the underlay device (`IFLA_VXLAN_LINK`), null when none or not in this namespace. */
  underlay: string | null;
  underlayIndex: number | null;
  /** Learns remote MACs from received packets. */
  learning: boolean;
  /** Outer TTL / hop limit; 0 means the route's. */
  ttl: number;
  /** Outer TOS; 1 means inherit the inner packet's. */
  tos: number;
  /** UDP checksums on outer IPv4 packets. */
  udpCsum: boolean;
}

/** A bridge to create (`ip link add NAME type bridge`). Absent attributes take the kernel's defaults. */
export interface BridgeSpec {
  kind: 'bridge';
  stp?: boolean;
  /**
   * br_netfilter's per-bridge switch for IPv4 (`IFLA_BR_NF_CALL_IPTABLES`). A kernel without
   * CONFIG_BRIDGE_NETFILTER accepts and ignores it; the returned link then shows null.
   */
  nfCallIptables?: boolean;
  /** The same for IPv6 (`IFLA_BR_NF_CALL_IP6TABLES`). */
  nfCallIp6tables?: boolean;
}

/** A VXLAN device to create (`ip link add NAME type vxlan id VNI ...`). */
export interface VxlanSpec {
  kind: 'vxlan';
  /** 0 to 16777215. */
  vni: number;
  /** Destination UDP port; default 4789 (IANA), not the kernel's own default 8472. */
  port?: number;
  /** UDP source ports to hash flows over; the namespace's local port range when absent. */
  sourcePortRange?: { min: number; max: number };
  /** Outer source address, IPv4 or IPv6 (the same family as `group`). */
  local?: string;
  /** Remote unicast VTEP or multicast group (a multicast group needs `underlay`). */
  group?: string;
  /** Device the outer packets leave by (`IFLA_VXLAN_LINK`); must exist in the same namespace. */
  underlay?: string;
  /** Learn remote MACs from received packets; default true. Off for an FDB-programmed full mesh. */
  learning?: boolean;
  /** Outer TTL, 0 to 255; 0 (the default) means the route's. */
  ttl?: number;
  /** Outer TOS, 0 to 255 (1: inherit the inner packet's); 0 when absent. */
  tos?: number;
  /** UDP checksums on outer IPv4 packets; the kernel's default (on) when absent. */
  udpCsum?: boolean;
}

export interface LinkCreate extends NetnsOption {
  /** At most 15 bytes; no '/', ':' or whitespace; not "." or "..". */
  name: string;
  spec: BridgeSpec | VxlanSpec;
  mtu?: number;
  /** `IFLA_IFALIAS`, at most 255 bytes: how nodenet marks a link as its own. */
  alias?: string;
  /** Bridge (or other master) to enslave the new link to; null or absent: none. */
  master?: string | null;
  /** Administratively up once created; default down. */
  up?: boolean;
  /** MAC address (`aa:bb:cc:dd:ee:ff`); the kernel picks a random one when absent. */
  address?: string;
}

export interface LinkUpdate extends NetnsOption {
  /** The link to change. */
  name: string;
  mtu?: number;
  /** The new alias; null removes it. */
  alias?: string | null;
  /** The master to enslave to; null releases the link from its master. */
  master?: string | null;
  up?: boolean;
  /** Bridge attributes to change (the link must be a bridge, else `EOPNOTSUPP`). */
  bridge?: Omit<BridgeSpec, 'kind'>;
  /** VXLAN attributes the kernel lets change in place (the link must be a VXLAN device). */
  vxlan?: Pick<VxlanSpec, 'learning' | 'ttl' | 'tos'>;
}

const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;

// iproute2's print_link_flags order.
const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [0x8, 'LOOPBACK'],
  [0x2, 'BROADCAST'],
  [0x10, 'POINTOPOINT'],
  [0x1000, 'MULTICAST'],
  [0x80, 'NOARP'],
  [0x200, 'ALLMULTI'],
  [0x100, 'PROMISC'],
  [0x400, 'MASTER'],
  [0x800, 'SLAVE'],
  [0x4, 'DEBUG'],
  [0x8000, 'DYNAMIC'],
  [0x4000, 'AUTOMEDIA'],
  [0x2000, 'PORTSEL'],
  [0x20, 'NOTRAILERS'],
  [0x1, 'UP'],
  [0x10000, 'LOWER_UP'],
  [0x20000, 'DORMANT'],
  [0x40000, 'ECHO'],
];

const OPER_STATES: readonly OperState[] = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'];

/** The names `ip link` shows for a set of IFF_* flags. */
export function linkFlagNames(flags: number): string[] {
  const names: string[] = [];
  if (flags & IFF_UP && !(flags & IFF_RUNNING)) names.push('NO-CARRIER');
  let rest = flags & ~IFF_RUNNING;
  for (const [bit, name] of FLAG_NAMES) {
    if (rest & bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push(rest.toString(16));
  return names;
}

function decodeVxlan(raw: NonNullable<RawLinkDetails['vxlan']>, byIndex: Map<number, RawLink>): VxlanInfo {
  return {
    vni: raw.vni,
    port: raw.port,
    sourcePortRange: raw.portMin || raw.portMax ? { min: raw.portMin, max: raw.portMax } : null,
    local: raw.local || null,
    group: raw.group || null,
    underlay: raw.underlayIndex ? (byIndex.get(raw.underlayIndex)?.name ?? null) : null,
    underlayIndex: raw.underlayIndex || null,
    learning: raw.learning,
    ttl: raw.ttl,
    tos: raw.tos,
    udpCsum: raw.udpCsum,
  };
}

function decodeLink(raw: RawLink, byIndex: Map<number, RawLink>, details: RawLinkDetails | undefined): Link {
  const link: Link = {
    index: raw.index,
    name: raw.name,
    kind: raw.kind || null,
    slaveKind: raw.slaveKind || null,
    mtu: raw.mtu,
    flags: linkFlagNames(raw.flags),
    rawFlags: raw.flags,
    up: (raw.flags & IFF_UP) !== 0,
    operstate: OPER_STATES[raw.operstate] ?? 'UNKNOWN',
    txqlen: raw.txqlen,
    master: raw.masterIndex ? (byIndex.get(raw.masterIndex)?.name ?? null) : null,
    masterIndex: raw.masterIndex || null,
    linkIndex: raw.linkIndex || null,
    linkNetnsId: raw.linkNetnsId >= 0 ? raw.linkNetnsId : null,
    alias: raw.alias || null,
    address: raw.address || null,
  };
  // The details come from a second dump: a link replaced in between (same index, new name) gets none.
  if (details?.name === raw.name) {
    if (details.bridge) link.bridge = { ...details.bridge };
    if (details.vxlan) link.vxlan = decodeVxlan(details.vxlan, byIndex);
  }
  return link;
}

/**
 * Every link in the namespace, in ifindex order, bridges and VXLAN devices with their
 * configuration. Rejects with a KernelError.
 */
export async function list(options: NetnsOption = {}): Promise<Link[]> {
  const [raw, details] = await Promise.all([
    kernelCall(native().listLinks(options.netns)),
    kernelCall(native().listLinkDetails(options.netns)),
  ]);
  const byIndex = new Map(raw.map((l) => [l.index, l]));
  const detailsByIndex = new Map(details.map((d) => [d.index, d]));
  return raw.map((l) => decodeLink(l, byIndex, detailsByIndex.get(l.index)));
}

/** The link with this name, or null when the namespace has none. Rejects with a KernelError. */
export async function get(name: string, options: NetnsOption = {}): Promise<Link | null> {
  return (await list(options)).find((l) => l.name === name) ?? null;
}

// IFNAMSIZ less the terminating NUL, and dev_valid_name()'s other rules.
const MAX_NAME_BYTES = 15;
// IFALIASZ less the terminating NUL.
const MAX_ALIAS_BYTES = 255;

function checkName(fn: string, what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`${fn}: ${what} must be a string`);
  const bytes = Buffer.byteLength(name);
  let problem: string | null = null;
  if (bytes === 0) problem = 'it is empty';
  else if (bytes > MAX_NAME_BYTES) problem = `it is ${bytes} bytes long, the kernel allows ${MAX_NAME_BYTES}`;
  else if (name === '.' || name === '..') problem = 'the kernel reserves it';
  else if (/[/:\s\0]/.test(name)) problem = "it contains '/', ':', a NUL or whitespace";
  if (problem) throw new TypeError(`${fn}: invalid ${what} ${JSON.stringify(name)}: ${problem}`);
}

function checkInteger(fn: string, what: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${fn}: ${what} must be a whole number from ${min} to ${max}, not ${String(value)}`);
  }
}

function checkAddress(fn: string, what: string, value: string | undefined): number {
  if (value === undefined) return 0;
  const family = isIP(value);
  if (family === 0) throw new TypeError(`${fn}: ${what} is not an IPv4 or IPv6 address: ${JSON.stringify(value)}`);
  return family;
}

function checkAlias(fn: string, alias: string | null | undefined): void {
  if (alias == null) return;
  if (typeof alias !== 'string') throw new TypeError(`${fn}: alias must be a string or null`);
  if (Buffer.byteLength(alias) > MAX_ALIAS_BYTES) throw new RangeError(`${fn}: alias is longer than ${MAX_ALIAS_BYTES} bytes`);
}

/** The 6 bytes of a MAC address written `aa:bb:cc:dd:ee:ff` (either case). Throws a TypeError otherwise. */
export function macBytes(mac: string, fn = 'macBytes'): Buffer {
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i.test(mac)) {
    throw new TypeError(`${fn}: not a MAC address (aa:bb:cc:dd:ee:ff): ${JSON.stringify(mac)}`);
  }
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

// Undefined properties of a request are absent: the addon sends nothing for them.
function vxlanRequest(fn: string, spec: VxlanSpec): NonNullable<RawLinkRequest['vxlan']> {
  checkInteger(fn, 'vni', spec.vni, 0, 0xffffff);
  checkInteger(fn, 'port', spec.port, 1, 0xffff);
  checkInteger(fn, 'ttl', spec.ttl, 0, 255);
  checkInteger(fn, 'tos', spec.tos, 0, 255);
  const range = spec.sourcePortRange;
  if (range) {
    checkInteger(fn, 'sourcePortRange.min', range.min, 1, 0xffff);
    checkInteger(fn, 'sourcePortRange.max', range.max, 1, 0xffff);
    if (range.min > range.max) throw new RangeError(`${fn}: sourcePortRange.min is above sourcePortRange.max`);
  }
  const localFamily = checkAddress(fn, 'local', spec.local);
  const groupFamily = checkAddress(fn, 'group', spec.group);
  if (localFamily && groupFamily && localFamily !== groupFamily) throw new TypeError(`${fn}: local and group must be of the same IP family`);
  if (spec.underlay !== undefined) checkName(fn, 'underlay', spec.underlay);
  return {
    vni: spec.vni,
    port: spec.port ?? 4789,
    portMin: range?.min,
    portMax: range?.max,
    local: spec.local,
    group: spec.group,
    underlay: spec.underlay,
    learning: spec.learning ?? true,
    ttl: spec.ttl,
    tos: spec.tos,
    udpCsum: spec.udpCsum,
  };
}

function bridgeRequest(spec: Omit<BridgeSpec, 'kind'>): NonNullable<RawLinkRequest['bridge']> {
  return { stp: spec.stp, nfCallIptables: spec.nfCallIptables, nfCallIp6tables: spec.nfCallIp6tables };
}

// What create and update check and send alike.
function commonRequest(fn: string, options: LinkCreate | LinkUpdate): RawLinkRequest {
  checkName(fn, 'name', options.name);
  checkInteger(fn, 'mtu', options.mtu, 0, 0xffffffff);
  checkAlias(fn, options.alias);
  if (options.master != null) checkName(fn, 'master', options.master);
  return { name: options.name, mtu: options.mtu, up: options.up };
}

async function readBack(fn: string, name: string, options: NetnsOption): Promise<Link> {
  const link = await get(name, options);
  // Only when something else removed or renamed it in the meantime.
  if (!link) throw new Error(`${fn}: link ${name} vanished right after it was written`);
  return link;
}

/**
 * Creates a bridge or VXLAN device with everything in `options` (attributes, MTU, MAC, master,
 * up), and its alias, and returns it as `list()` reads it back. Invalid input is a TypeError or
 * RangeError before the kernel is asked. Rejects with a KernelError: `EEXIST` when the name is
 * taken, `ENODEV` when the master or underlay does not exist, the kernel's reason (extack) for
 * anything it refuses. The kernel ignores an alias in the creating message, so it is set by a
 * second one; a link whose alias could not be set is removed again.
 */
export async function create(options: LinkCreate): Promise<Link> {
  const fn = 'links.create';
  const request = commonRequest(fn, options);
  request.master = options.master ?? undefined;
  request.alias = options.alias || undefined;
  if (options.address !== undefined) request.address = macBytes(options.address, fn);
  const spec = options.spec;
  if (spec?.kind === 'bridge') {
    request.kind = 'bridge';
    request.bridge = bridgeRequest(spec);
  } else if (spec?.kind === 'vxlan') {
    request.kind = 'vxlan';
    request.vxlan = vxlanRequest(fn, spec);
  } else {
    throw new TypeError(`${fn}: spec.kind must be "bridge" or "vxlan"`);
  }
  await kernelCall(native().createLink(request, options.netns));
  return readBack(fn, options.name, options);
}

/**
 * Changes only what `options` gives on the existing link `name` and returns it as read back:
 * `alias: null` removes the alias, `master: null` releases the link from its bridge, `up` sets it
 * administratively up or down. Rejects with a KernelError: `ENODEV` when the link (or master) does
 * not exist, `EOPNOTSUPP` for `bridge`/`vxlan` attributes on a link of another kind.
 */
export async function update(options: LinkUpdate): Promise<Link> {
  const fn = 'links.update';
  if (options.bridge && options.vxlan) throw new TypeError(`${fn}: give bridge or vxlan attributes, not both`);
  const request = commonRequest(fn, options);
  // '' is how the addon is told to release the master and to drop the alias.
  if (options.master !== undefined) request.master = options.master ?? '';
  if (options.alias !== undefined) request.alias = options.alias ?? '';
  if (options.bridge) {
    request.kind = 'bridge';
    request.bridge = bridgeRequest(options.bridge);
  } else if (options.vxlan) {
    const { learning, ttl, tos } = options.vxlan;
    checkInteger(fn, 'ttl', ttl, 0, 255);
    checkInteger(fn, 'tos', tos, 0, 255);
    request.kind = 'vxlan';
    request.vxlan = { learning, ttl, tos };
  }
  await kernelCall(native().updateLink(request, options.netns));
  return readBack(fn, options.name, options);
}

/**
 * Deletes the link `name` (with a veth, its peer too). Rejects with a KernelError, `ENODEV` when
 * there is no such link.
 */
export async function remove(options: NetnsOption & { name: string }): Promise<void> {
  checkName('links.remove', 'name', options.name);
  await kernelCall(native().removeLink(options.name, options.netns));
}
