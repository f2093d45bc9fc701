// The overlay custom resources as the API server serves them (group nodenet.io, version
// v1alpha1; schemas in deploy/crds/). Types only. The API server has enforced every rule noted
// here at admission and filled in the defaults; fields it defaults stay optional here, as in the
// schema, so that objects written by hand (tests, fixtures) need not spell them out. What only a
// node can know (does the underlay exist there, which InternalIP) the model decides per node.

/** apiVersion of both kinds. */
export type OverlayApiVersion = 'nodenet.io/v1alpha1';

/** The parts of metadata the model and the agent read. Both kinds are cluster-scoped. */
export interface OverlayObjectMeta {
  name: string;
  uid?: string;
  resourceVersion?: string;
  /** Bumped by the API server on every spec change; echoed as a condition's observedGeneration. */
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

/** metav1.OwnerReference (a NodeNetworkStatus is owned by its Node). */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** metav1.LabelSelector. Every expression must hold and every label match; empty selects all. */
export interface LabelSelector {
  /** At most 64; values at most 63 characters. */
  matchLabels?: Record<string, string>;
  /** At most 32. */
  matchExpressions?: LabelSelectorRequirement[];
}

/** metav1.LabelSelectorRequirement. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  /** Non-empty for In and NotIn; absent or empty for Exists and DoesNotExist. At most 64. */
  values?: string[];
}

/** metav1.Condition. */
export interface Condition {
  /** CamelCase, e.g. `Ready`; unique within its list. */
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase, at least one character. */
  reason: string;
  /** For people; may be empty. */
  message: string;
  /** The metadata.generation the condition was computed from. */
  observedGeneration?: number;
  /** RFC 3339; moves only when `status` changes. */
  lastTransitionTime: string;
}

/** A Linux bridge nodenet creates. */
export interface BridgeSpec {
  /** Run the kernel's spanning tree protocol. Absent: false. */
  stp?: boolean;
}

/** An interface that already exists on the node; nodenet never creates, changes or deletes it. */
export type DeviceSpec = Record<string, never>;

/** The UDP source ports a VXLAN picks from by flow hash; `min` ≤ `max`, both 1–65535. */
export interface PortRange {
  min: number;
  max: number;
}

/** One remote address: a unicast peer or a multicast group. */
export interface RemotePeer {
  /** An IPv4 or IPv6 address of the same family as `local` (when given). */
  address: string;
}

/** A unicast full mesh: an all-zero FDB entry to every other selected node's InternalIP. */
export interface MeshPeers {
  /** Which InternalIP family the mesh uses. The API server fills in IPv4 when absent. */
  addressFamily?: 'IPv4' | 'IPv6';
}

/** Where a VXLAN sends to: exactly one of the two. */
export interface VxlanPeers {
  remote?: RemotePeer;
  mesh?: MeshPeers;
}

/** A VXLAN tunnel interface nodenet creates. */
export interface VxlanSpec {
  /** The VXLAN network identifier, 1–16777215. */
  vni: number;
  /** UDP destination port, 1–65535. The API server fills in 4789 when absent. */
  port?: number;
  sourcePortRange?: PortRange;
  /** The Link (by name, never this one; typically a device) whose interface carries the packets. */
  underlay: string;
  /**
   * The local address, IPv4 or IPv6. Absent: the node's InternalIP of the peers' family. With a
   * mesh it is of `mesh.addressFamily`; with a remote, of the remote's family.
   */
  local?: string;
  /** Learn remote MACs from received packets. The API server fills in true when absent. */
  learning?: boolean;
  /** Outer TTL, 1–255; absent, the kernel's default. */
  ttl?: number;
  /** Outer TOS, 0–255; absent, the kernel's default. */
  tos?: number;
  peers: VxlanPeers;
}

/** Link.spec. Exactly one of `bridge`, `vxlan` and `device` is set. */
export interface LinkSpec {
  /** The kernel interface name: 1–15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
  interfaceName: string;
  /** The nodes that get this interface; absent selects every node. */
  nodeSelector?: LabelSelector;
  /** The bridge Link (by name, never this one) to enslave to. Only on a vxlan Link. */
  master?: string;
  /**
   * 68–65535. Absent: a VXLAN gets its underlay's MTU less the encapsulation, a bridge its ports'
   * smallest. A device's is not applied: it stands for the device's MTU when sizing VXLANs.
   */
  mtu?: number;
  bridge?: BridgeSpec;
  vxlan?: VxlanSpec;
  device?: DeviceSpec;
}

/** Link.status: reserved (each node reports in its NodeNetworkStatus). */
export interface LinkStatus {
  observedGeneration?: number;
  /** A list map keyed by `type`. */
  conditions?: Condition[];
}

/** A Link (cluster-scoped, plural `links`, short name `nnlink`). */
export interface LinkResource {
  apiVersion: OverlayApiVersion;
  kind: 'Link';
  metadata: OverlayObjectMeta;
  spec: LinkSpec;
  status?: LinkStatus;
}

/** One Link as one node found it. */
export interface NodeLinkStatus {
  /** The Link resource; the list map key. */
  name: string;
  interfaceName: string;
  /** A list map keyed by `type`; the agent writes `Ready`. */
  conditions?: Condition[];
}

/** NodeNetworkStatus.status, written by the node's agent through /status. */
export interface NodeNetworkStatusStatus {
  /** A list map keyed by `name`: one entry per Link that selects the node. */
  links?: NodeLinkStatus[];
  /** For people and the Links column, e.g. "3/3 ready". */
  summary?: string;
  /** RFC 3339: when the agent last wrote this status. */
  observedAt?: string;
}

/**
 * One node's overlay status (cluster-scoped, plural `nodenetworkstatuses`, short name
 * `nnstatus`): named after the Node and owned by it, so it is garbage-collected with the Node.
 */
export interface NodeNetworkStatusResource {
  apiVersion: OverlayApiVersion;
  kind: 'NodeNetworkStatus';
  metadata: OverlayObjectMeta;
  status?: NodeNetworkStatusStatus;
}
