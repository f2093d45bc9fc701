// Bridge forwarding database entries (`bridge fdb`), through raw rtnetlink. On a VXLAN device an
// entry maps an inner MAC to the remote VTEP that receives it; one all-zero entry per peer is how
// a unicast full mesh floods broadcast and unknown traffic.
import { isIP } from 'node:net';

import { kernelCall } from './errors.js';
import { macBytes, type NetnsOption } from './links.js';
import { native, type RawFdbEntry } from './native.js';

/** How `bridge fdb` names an entry's NUD state. */
export type FdbState = 'permanent' | 'static' | 'stale' | 'reachable' | 'other';

export interface FdbEntry {
  /** Lower-case hex with colons; `00:00:00:00:00:00` is a VXLAN device's default destination. */
  mac: string;
  /** The device the entry is on; null when it was removed since the dump. */
  device: string | null;
  ifindex: number;
  /** The remote VTEP (NDA_DST) of a VXLAN entry. */
  dst: string | null;
  /** The VNI sent to `dst`, only when it differs from the device's own. */
  vni: number | null;
  /** The UDP port sent to, only when it differs from the device's own. */
  port: number | null;
  vlan: number | null;
  /** The underlay device a VXLAN entry sends through (NDA_IFINDEX; `bridge` prints it as `via`). */
  via: string | null;
  viaIndex: number | null;
  /** The bridge whose own FDB holds the entry (NDA_MASTER). */
  master: string | null;
  masterIndex: number | null;
  state: FdbState;
  /** NUD_PERMANENT: never aged out. */
  permanent: boolean;
  /** NTF_SELF: in the device's own table (a VXLAN's remotes) rather than its bridge's. */
  self: boolean;
  /** The NTF_* flags as `bridge -j fdb` names them (self, router, extern_learn, offload, master, sticky). */
  flags: string[];
  /** NUD_* and NTF_* bits as the kernel reports them. */
  rawState: number;
  rawFlags: number;
}

const NUD_REACHABLE = 0x02;
const NUD_STALE = 0x04;
const NUD_NOARP = 0x40;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;

// iproute2's bridge/fdb.c order.
const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [NTF_SELF, 'self'],
  [0x80, 'router'],
  [0x10, 'extern_learn'],
  [0x20, 'offload'],
  [0x04, 'master'],
  [0x40, 'sticky'],
];

function stateOf(state: number): FdbState {
  if (state & NUD_PERMANENT) return 'permanent';
  if (state & NUD_NOARP) return 'static';
  if (state & NUD_STALE) return 'stale';
  if (state & NUD_REACHABLE) return 'reachable';
  return 'other';
}

function decodeEntry(raw: RawFdbEntry): FdbEntry {
  return {
    mac: raw.mac,
    device: raw.device || null,
    ifindex: raw.ifindex,
    dst: raw.dst || null,
    vni: raw.vni,
    port: raw.port,
    vlan: raw.vlan,
    via: raw.via || null,
    viaIndex: raw.viaIndex || null,
    master: raw.master || null,
    masterIndex: raw.masterIndex || null,
    state: stateOf(raw.state),
    permanent: (raw.state & NUD_PERMANENT) !== 0,
    self: (raw.flags & NTF_SELF) !== 0,
    flags: FLAG_NAMES.filter(([bit]) => raw.flags & bit).map(([, name]) => name),
    rawState: raw.state,
    rawFlags: raw.flags,
  };
}

export interface FdbChange extends NetnsOption {
  /** The device whose own table holds the entry (a VXLAN device, for remote VTEPs). */
  device: string;
  /** `aa:bb:cc:dd:ee:ff`; all zeros for the default destination of unknown and broadcast traffic. */
  mac: string;
  /** The remote VTEP, IPv4 or IPv6. */
  dst?: string;
}

function checkDst(fn: string, dst: string | undefined): void {
  if (dst !== undefined && isIP(dst) === 0) throw new TypeError(`${fn}: dst is not an IPv4 or IPv6 address: ${JSON.stringify(dst)}`);
}

/**
 * The bridge FDB entries of the namespace, or of one device, as `bridge fdb show [dev DEVICE]`
 * lists them. Rejects with a KernelError (`ENODEV` for a device that does not exist).
 */
export async function list(options: NetnsOption & { device?: string } = {}): Promise<FdbEntry[]> {
  const raw = await kernelCall(native().listFdb(options.device, options.netns));
  return raw.map(decodeEntry);
}

// The all-zero MAC and multicast MACs: the ones a VXLAN device keeps several destinations for.
function isFloodMac(mac: Buffer): boolean {
  return (mac[0]! & 1) === 1 || mac.every((b) => b === 0);
}

/**
 * Adds a permanent entry to the device's own table (NTF_SELF), as `bridge fdb append|replace MAC
 * dev DEVICE dst DST self permanent`. For the all-zero MAC and multicast MACs `append` defaults to
 * true: each call adds one more destination (one per peer makes a unicast full mesh), and adding
 * one that is there already changes nothing. For a unicast MAC it defaults to false: the MAC's
 * entry becomes exactly this one (NLM_F_REPLACE). Given explicitly, the kernel's own rules apply:
 * it refuses to replace an existing all-zero or multicast entry (`EOPNOTSUPP`) and ignores
 * `append` for an existing unicast one. Rejects with a KernelError (`ENODEV` for a missing device).
 */
export async function add(options: FdbChange & { append?: boolean }): Promise<void> {
  const mac = macBytes(options.mac, 'fdb.add');
  checkDst('fdb.add', options.dst);
  const append = options.append ?? isFloodMac(mac);
  await kernelCall(native().addFdb(options.device, mac, options.dst, append, options.netns));
}

/**
 * Removes the device's own entry for the MAC, or with `dst` only that destination of it. Rejects
 * with a KernelError, `ENOENT` when the device has no entry for the MAC. A `dst` the MAC's entry
 * does not have is not an error: the kernel answers success and changes nothing.
 */
export async function remove(options: FdbChange): Promise<void> {
  const mac = macBytes(options.mac, 'fdb.remove');
  checkDst('fdb.remove', options.dst);
  await kernelCall(native().removeFdb(options.device, mac, options.dst, options.netns));
}
