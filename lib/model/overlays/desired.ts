// One node's desired overlay links: the Link resources that select it, resolved against each other
// (master bridges, underlays) and against the cluster's Nodes (the VXLAN mesh), plus a verdict per
// Link for that node's status. Pure: no kernel, no client, no clock.
//
// The rules:
// - A Link applies to a node when its nodeSelector matches the node's labels (no selector: all).
// - `device` Links name an interface that must already exist; nodenet never creates or changes it.
// - A master must be a bridge Link applied to the same node; an underlay must be a device or
//   bridge Link applied to the same node. Anything else fails that Link on that node only (and
//   the Links that depend on it), never the rest.
// - Two Links applied to one node may not claim one interface name.
// - VXLAN local address: spec.vxlan.local, else the node's InternalIP of the peers' family.
// - VXLAN peers: `remote` is one address (unicast, or a multicast group); `mesh` is an all-zero FDB
//   entry to the InternalIP (same family) of every other node the same Link applies to, and, with
//   learning off, an entry for each peer's VXLAN device MAC (derived from its node name and VNI, so
//   no agent needs to read another's state).
// - VXLAN MTU: spec.mtu, else the underlay's MTU − 50 (IPv4) or − 70 (IPv6); a bridge whose MTU
//   is set above one of its VXLAN ports' is warned about (its frames would not fit the tunnel).
// - Order: bridges before the VXLANs that are enslaved to them or run over them; removal in
//   reverse (the agent's concern, from `order`).
import type { LabelSelector, LinkResource, LinkSpec } from './types.js';

export const VXLAN_OVERHEAD = { IPv4: 50, IPv6: 70 } as const;
export const DEFAULT_VXLAN_PORT = 4789;
export const ALL_ZERO_MAC = '00:00:00:00:00:00';

export type AddressFamily = 'IPv4' | 'IPv6';

export interface NodeInput {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** status.addresses of type InternalIP, in the Node's order. */
  internalIPs: readonly string[];
}

export interface OverlayFacts {
  /** MTU of each existing interface on this node, by name (the underlays' MTU decides the VXLANs'). */
  mtus: Readonly<Record<string, number>>;
}

export interface DesiredBridge {
  stp: boolean;
}

export interface DesiredVxlan {
  vni: number;
  port: number;
  sourcePortRange: { min: number; max: number } | null;
  local: string;
  /** The underlay's interface name. */
  underlay: string;
  learning: boolean;
  ttl: number | null;
  tos: number | null;
  /** A remote unicast address or multicast group (`remote` peers); null for a mesh. */
  group: string | null;
  /** The mesh's all-zero FDB destinations, sorted; empty for `remote`. */
  meshPeers: string[];
  /** This node's VXLAN device MAC: derived from the node and VNI, so every peer can know it. */
  address: string;
  /**
   * With learning off, the per-MAC entries of a mesh: each peer's VXLAN device MAC to that peer
   * (sorted by dst). Empty with learning on (the kernel learns) and for `remote`.
   */
  meshMacs: Array<{ mac: string; dst: string }>;
}

export interface DesiredLink {
  /** The Link resource. */
  link: string;
  generation: number;
  interfaceName: string;
  kind: 'bridge' | 'vxlan' | 'device';
  /** null: leave it to the kernel (a bridge takes its ports' smallest; a device is not nodenet's). */
  mtu: number | null;
  /** The master bridge's interface name. */
  master: string | null;
  bridge: DesiredBridge | null;
  vxlan: DesiredVxlan | null;
  /** 0 for devices and bridges, 1 for VXLANs: create in ascending order, remove in descending. */
  order: number;
}

export interface LinkVerdict {
  link: string;
  interfaceName: string;
  generation: number;
  ok: boolean;
  /** A CamelCase reason for the Ready condition. */
  reason: string;
  message: string;
  /** Things worth saying that do not fail the Link. */
  warnings: string[];
}

export interface OverlayPlan {
  /** The links this node should have, in creation order (devices only as references). */
  links: DesiredLink[];
  /** Per Link that applies to this node: whether it can be realised, and why not. */
  verdicts: LinkVerdict[];
}

export interface OverlayInput {
  node: NodeInput;
  /** Every Node (this one included), for the meshes. */
  nodes: readonly NodeInput[];
  links: readonly LinkResource[];
  facts: OverlayFacts;
}

/** Whether a metav1.LabelSelector selects these labels. An empty or absent selector selects everything. */
export function selects(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = has ? labels[e.key] : undefined;
    switch (e.operator) {
      case 'In':
        if (!has || !(e.values ?? []).includes(value!)) return false;
        break;
      case 'NotIn':
        if (has && (e.values ?? []).includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/**
 * The MAC nodenet gives a node's VXLAN device for a VNI: locally administered, unicast, and a
 * function of the node name and VNI alone, so that with learning off every other node can point
 * an FDB entry at it without asking. FNV-1a over the name and VNI, spread over five bytes.
 */
export function vxlanMac(nodeName: string, vni: number): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const text = `${nodeName}/${vni}`;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x811c9dc5) >>> 0;
  }
  const bytes = [0x02, h1 >>> 24, (h1 >>> 16) & 0xff, (h1 >>> 8) & 0xff, h1 & 0xff, h2 & 0xff];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The address family of an IP literal. */
export function familyOf(address: string): AddressFamily {
  return address.includes(':') ? 'IPv6' : 'IPv4';
}

function kindOf(spec: LinkSpec): DesiredLink['kind'] | null {
  const kinds = [spec.bridge ? 'bridge' : null, spec.vxlan ? 'vxlan' : null, spec.device ? 'device' : null].filter((k): k is DesiredLink['kind'] => k !== null);
  return kinds.length === 1 ? kinds[0]! : null;
}

const byName = (a: { metadata: { name: string } }, b: { metadata: { name: string } }) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0);

export function desiredOverlay(input: OverlayInput): OverlayPlan {
  const applied = [...input.links].filter((l) => selects(l.spec.nodeSelector, input.node.labels)).sort(byName);
  const byLink = new Map(applied.map((l) => [l.metadata.name, l]));
  const verdicts = new Map<string, LinkVerdict>();
  const fail = (l: LinkResource, reason: string, message: string) =>
    verdicts.set(l.metadata.name, { link: l.metadata.name, interfaceName: l.spec.interfaceName, generation: l.metadata.generation ?? 0, ok: false, reason, message, warnings: [] });

  // One interface name, one Link: a clash fails every Link that claims it (none of them wins by
  // the accident of its name's order).
  const claims = new Map<string, string[]>();
  for (const l of applied) claims.set(l.spec.interfaceName, [...(claims.get(l.spec.interfaceName) ?? []), l.metadata.name]);
  for (const l of applied) {
    const others = claims.get(l.spec.interfaceName)!.filter((n) => n !== l.metadata.name);
    if (others.length) fail(l, 'InterfaceNameConflict', `interface ${l.spec.interfaceName} is also claimed by Link ${others.join(', ')} on node ${input.node.name}`);
    else if (kindOf(l.spec) === null) fail(l, 'InvalidLink', 'exactly one of bridge, vxlan and device must be set');
  }

  const links: DesiredLink[] = [];
  const resolved = new Map<string, DesiredLink>();
  // Devices and bridges first: VXLANs refer to them.
  const ordered = [...applied].sort((a, b) => Number(!!a.spec.vxlan) - Number(!!b.spec.vxlan) || byName(a, b));
  for (const l of ordered) {
    if (verdicts.has(l.metadata.name)) continue;
    const kind = kindOf(l.spec)!;
    const base = { link: l.metadata.name, generation: l.metadata.generation ?? 0, interfaceName: l.spec.interfaceName, kind };
    const warnings: string[] = [];

    let master: string | null = null;
    if (l.spec.master !== undefined && kind !== 'vxlan') {
      // The kernel refuses a bridge inside a bridge, and a device is not nodenet's to move.
      fail(l, 'MasterNotAllowed', `a ${kind} Link cannot have a master; only a VXLAN is enslaved to a bridge`);
      continue;
    }
    if (l.spec.master !== undefined) {
      const m = byLink.get(l.spec.master);
      if (!m) {
        fail(l, 'MasterNotFound', `master Link ${l.spec.master} does not apply to node ${input.node.name}`);
        continue;
      }
      if (!m.spec.bridge) {
        fail(l, 'MasterNotBridge', `master Link ${l.spec.master} is not a bridge`);
        continue;
      }
      if (verdicts.get(m.metadata.name)?.ok === false) {
        fail(l, 'MasterFailed', `master Link ${l.spec.master} is not ready on node ${input.node.name}: ${verdicts.get(m.metadata.name)!.message}`);
        continue;
      }
      master = m.spec.interfaceName;
    }

    if (kind === 'device') {
      const d: DesiredLink = { ...base, mtu: null, master: null, bridge: null, vxlan: null, order: 0 };
      resolved.set(l.metadata.name, d);
      links.push(d);
      verdicts.set(l.metadata.name, { link: l.metadata.name, interfaceName: l.spec.interfaceName, generation: base.generation, ok: true, reason: 'Ready', message: '', warnings });
      continue;
    }
    if (kind === 'bridge') {
      const d: DesiredLink = { ...base, mtu: l.spec.mtu ?? null, master, bridge: { stp: l.spec.bridge!.stp ?? false }, vxlan: null, order: 0 };
      resolved.set(l.metadata.name, d);
      links.push(d);
      verdicts.set(l.metadata.name, { link: l.metadata.name, interfaceName: l.spec.interfaceName, generation: base.generation, ok: true, reason: 'Ready', message: '', warnings });
      continue;
    }

    const v = l.spec.vxlan!;
    const under = byLink.get(v.underlay);
    if (!under) {
      fail(l, 'UnderlayNotFound', `underlay Link ${v.underlay} does not apply to node ${input.node.name}`);
      continue;
    }
    if (under.spec.vxlan) {
      fail(l, 'UnderlayInvalid', `underlay Link ${v.underlay} is a VXLAN; an underlay is a device or a bridge`);
      continue;
    }
    if (verdicts.get(under.metadata.name)?.ok === false) {
      fail(l, 'UnderlayFailed', `underlay Link ${v.underlay} is not ready on node ${input.node.name}: ${verdicts.get(under.metadata.name)!.message}`);
      continue;
    }
    const family: AddressFamily = v.local ? familyOf(v.local) : v.peers.remote ? familyOf(v.peers.remote.address) : (v.peers.mesh?.addressFamily ?? 'IPv4');
    const local = v.local ?? input.node.internalIPs.find((ip) => familyOf(ip) === family);
    if (!local) {
      fail(l, 'NoLocalAddress', `node ${input.node.name} has no ${family} InternalIP for the tunnel's local address, and spec.vxlan.local is not set`);
      continue;
    }
    if (v.peers.remote && familyOf(v.peers.remote.address) !== familyOf(local)) {
      fail(l, 'AddressFamilyMismatch', `remote ${v.peers.remote.address} and local ${local} are of different families`);
      continue;
    }
    const peerNodes = v.peers.mesh
      ? input.nodes
          .filter((n) => n.name !== input.node.name && selects(l.spec.nodeSelector, n.labels))
          .flatMap((n) => {
            const ip = n.internalIPs.find((a) => familyOf(a) === familyOf(local));
            return ip === undefined || ip === local ? [] : [{ name: n.name, ip }];
          })
      : [];
    const meshPeers = [...new Set(peerNodes.map((p) => p.ip))].sort();
    const learning = v.learning ?? true;
    const meshMacs = learning ? [] : peerNodes.map((p) => ({ mac: vxlanMac(p.name, v.vni), dst: p.ip })).sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : a.mac < b.mac ? -1 : 1));
    const underlayName = under.spec.interfaceName;
    const underMtu = under.spec.mtu ?? input.facts.mtus[underlayName];
    let mtu = l.spec.mtu ?? null;
    if (mtu === null) {
      if (underMtu === undefined) {
        fail(l, 'UnderlayNotFound', `underlay interface ${underlayName} does not exist on node ${input.node.name}`);
        continue;
      }
      mtu = underMtu - VXLAN_OVERHEAD[familyOf(local)];
    } else if (underMtu !== undefined && mtu > underMtu - VXLAN_OVERHEAD[familyOf(local)]) {
      warnings.push(`MTU ${mtu} exceeds what ${underlayName} (MTU ${underMtu}) carries after the ${VXLAN_OVERHEAD[familyOf(local)]}-byte VXLAN header: large frames will be dropped`);
    }
    const d: DesiredLink = {
      ...base,
      mtu,
      master,
      bridge: null,
      vxlan: {
        vni: v.vni,
        port: v.port ?? DEFAULT_VXLAN_PORT,
        sourcePortRange: v.sourcePortRange ? { min: v.sourcePortRange.min, max: v.sourcePortRange.max } : null,
        local,
        underlay: underlayName,
        learning,
        ttl: v.ttl ?? null,
        tos: v.tos ?? null,
        group: v.peers.remote?.address ?? null,
        meshPeers,
        address: vxlanMac(input.node.name, v.vni),
        meshMacs,
      },
      order: 1,
    };
    resolved.set(l.metadata.name, d);
    links.push(d);
    verdicts.set(l.metadata.name, { link: l.metadata.name, interfaceName: l.spec.interfaceName, generation: base.generation, ok: true, reason: 'Ready', message: '', warnings });
  }

  // A bridge set above a VXLAN port's MTU would hand the tunnel frames it cannot carry.
  for (const b of links.filter((x) => x.kind === 'bridge' && x.mtu !== null)) {
    for (const port of links.filter((x) => x.master === b.interfaceName && x.kind === 'vxlan' && x.mtu !== null && x.mtu < b.mtu!)) {
      verdicts.get(b.link)!.warnings.push(`MTU ${b.mtu} exceeds VXLAN port ${port.interfaceName}'s ${port.mtu}: frames larger than ${port.mtu} bytes will not cross the tunnel`);
    }
  }

  const out = [...verdicts.values()].sort((a, b) => (a.link < b.link ? -1 : a.link > b.link ? 1 : 0));
  for (const v of out) if (v.ok && v.warnings.length) v.message = v.warnings.join('; ');
  return { links: links.sort((a, b) => a.order - b.order || (a.interfaceName < b.interfaceName ? -1 : 1)), verdicts: out };
}
