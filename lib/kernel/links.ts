// Network links (interfaces), read through libnl.
import { kernelCall } from './errors.js';
import { native, type RawLink } from './native.js';

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

function decodeLink(raw: RawLink, byIndex: Map<number, RawLink>): Link {
  return {
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
}

/** Every link in the namespace, in ifindex order. Rejects with a KernelError. */
export async function list(options: NetnsOption = {}): Promise<Link[]> {
  const raw = await kernelCall(native().listLinks(options.netns));
  const byIndex = new Map(raw.map((l) => [l.index, l]));
  return raw.map((l) => decodeLink(l, byIndex));
}
