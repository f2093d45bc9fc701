// Makes a node's links match its overlay plan, touching only what nodenet owns.
//
// Ownership is the alias: every link nodenet creates carries `nodenet:link/<Link name>`. A link of
// the planned name without that alias belongs to someone else: the Link fails on this node with a
// NameConflict and nothing of that link is touched. Links with nodenet's alias that no Link wants
// any more are removed (VXLANs before bridges), which is also how a restarted agent cleans up.
//
// Attributes the kernel can change in place (MTU, master, up, STP) are changed; a change of what a
// VXLAN is (VNI, port, addresses, underlay, learning, TTL/TOS) re-creates it. A re-created bridge
// loses its ports; the VXLANs planned under it are enslaved again in the same pass, and ports the
// CNI attached (pods' veths) come back when the CNI re-attaches them — so a bridge is only
// re-created when its kind was wrong.
import { fdb, isKernelError, links, type Link } from '../../kernel/index.js';
import type { DesiredLink, OverlayPlan } from '../../model/overlays/desired.js';
import { ALL_ZERO_MAC } from '../../model/overlays/desired.js';

export const ALIAS_PREFIX = 'nodenet:link/';

export interface LinkOutcome {
  ok: boolean;
  reason: string;
  message: string;
}

export interface SyncReport {
  /** Per Link resource that applies here: the kernel's side of its verdict (absent: not attempted). */
  outcomes: Map<string, LinkOutcome>;
  /** What changed, one line each, for the log. */
  changes: string[];
}

export function aliasOf(link: string): string {
  return `${ALIAS_PREFIX}${link}`;
}

function isOurs(l: Link): boolean {
  return (l.alias ?? '').startsWith(ALIAS_PREFIX);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Why an existing VXLAN must be re-created to become `d`, or null when it can be kept. */
function vxlanDrift(have: Link, d: DesiredLink, indexOf: (name: string) => number | undefined): string | null {
  const v = have.vxlan;
  const w = d.vxlan!;
  if (!v) return 'it is not a VXLAN';
  const diffs: string[] = [];
  if (v.vni !== w.vni) diffs.push(`VNI ${v.vni} → ${w.vni}`);
  if (v.port !== w.port) diffs.push(`port ${v.port} → ${w.port}`);
  if ((v.local ?? null) !== w.local) diffs.push(`local ${v.local} → ${w.local}`);
  if ((v.group ?? null) !== w.group) diffs.push(`remote ${v.group} → ${w.group}`);
  if ((v.underlayIndex ?? null) !== (indexOf(w.underlay) ?? null)) diffs.push(`underlay → ${w.underlay}`);
  if (v.learning !== w.learning) diffs.push(`learning ${v.learning} → ${w.learning}`);
  if (have.address !== w.address) diffs.push(`MAC ${have.address} → ${w.address}`);
  if (w.ttl !== null && v.ttl !== w.ttl) diffs.push(`ttl ${v.ttl} → ${w.ttl}`);
  if (w.tos !== null && v.tos !== w.tos) diffs.push(`tos ${v.tos} → ${w.tos}`);
  const range = v.sourcePortRange;
  if (w.sourcePortRange && (range?.min !== w.sourcePortRange.min || range?.max !== w.sourcePortRange.max)) diffs.push('source ports');
  return diffs.length ? diffs.join(', ') : null;
}

export async function syncOverlay(plan: OverlayPlan, at: { netns?: string }): Promise<SyncReport> {
  const outcomes = new Map<string, LinkOutcome>();
  const changes: string[] = [];
  let current = await links.list(at);
  const byName = () => new Map(current.map((l) => [l.name, l]));
  const refresh = async () => {
    current = await links.list(at);
  };

  // 1. Remove what nodenet owns and no Link wants here: VXLANs first (they hang off bridges).
  const wanted = new Set(plan.links.filter((d) => d.kind !== 'device').map((d) => d.interfaceName));
  const stale = current.filter((l) => isOurs(l) && !wanted.has(l.name)).sort((a, b) => Number(b.kind === 'vxlan') - Number(a.kind === 'vxlan'));
  for (const l of stale) {
    try {
      await links.remove({ ...at, name: l.name });
      changes.push(`removed ${l.kind ?? 'link'} ${l.name} (${(l.alias ?? '').slice(ALIAS_PREFIX.length)} no longer applies)`);
    } catch (error) {
      if (!(isKernelError(error) && error.code === 'ENODEV')) throw error;
    }
  }
  if (stale.length) await refresh();

  // 2. Create or correct each planned link, in the plan's order (bridges before VXLANs).
  for (const d of plan.links) {
    const have = byName().get(d.interfaceName);
    const fail = (reason: string, message: string) => outcomes.set(d.link, { ok: false, reason, message });
    if (d.kind === 'device') {
      if (!have) fail('DeviceNotFound', `interface ${d.interfaceName} does not exist on this node`);
      else outcomes.set(d.link, { ok: true, reason: 'Ready', message: '' });
      continue;
    }
    if (have && !isOurs(have)) {
      fail('NameConflict', `interface ${d.interfaceName} exists and is not nodenet's (${have.kind ?? 'a device'}${have.alias ? `, alias ${JSON.stringify(have.alias)}` : ''}); it is left untouched`);
      continue;
    }
    if (d.master !== null) {
      const master = byName().get(d.master);
      if (!master || !isOurs(master)) {
        fail('MasterNotReady', `master bridge ${d.master} is not on this node`);
        continue;
      }
    }
    try {
      if (d.kind === 'vxlan') {
        const clash = current.find((l) => l.name !== d.interfaceName && l.vxlan && l.vxlan.vni === d.vxlan!.vni && l.vxlan.port === d.vxlan!.port);
        if (clash) {
          fail('VniConflict', `${clash.name} (${isOurs(clash) ? "another of nodenet's" : 'not nodenet\'s'}) already uses VNI ${d.vxlan!.vni} on UDP port ${d.vxlan!.port}`);
          continue;
        }
        const underlay = byName().get(d.vxlan!.underlay);
        if (!underlay) {
          fail('UnderlayNotFound', `underlay ${d.vxlan!.underlay} does not exist on this node`);
          continue;
        }
      }
      let existing = have;
      const drift = existing === undefined ? null : d.kind === 'vxlan' ? vxlanDrift(existing, d, (n) => byName().get(n)?.index) : existing.kind !== 'bridge' ? `it is a ${existing.kind}` : null;
      if (existing && drift) {
        await links.remove({ ...at, name: d.interfaceName });
        changes.push(`re-creating ${d.interfaceName}: ${drift}`);
        existing = undefined;
      }
      if (!existing) {
        await links.create({
          ...at,
          name: d.interfaceName,
          spec:
            d.kind === 'bridge'
              ? { kind: 'bridge', stp: d.bridge!.stp, nfCallIptables: false }
              : {
                  kind: 'vxlan',
                  vni: d.vxlan!.vni,
                  port: d.vxlan!.port,
                  local: d.vxlan!.local,
                  underlay: d.vxlan!.underlay,
                  learning: d.vxlan!.learning,
                  ...(d.vxlan!.group ? { group: d.vxlan!.group } : {}),
                  ...(d.vxlan!.sourcePortRange ? { sourcePortRange: d.vxlan!.sourcePortRange } : {}),
                  ...(d.vxlan!.ttl !== null ? { ttl: d.vxlan!.ttl } : {}),
                  ...(d.vxlan!.tos !== null ? { tos: d.vxlan!.tos } : {}),
                },
          ...(d.mtu !== null ? { mtu: d.mtu } : {}),
          ...(d.kind === 'vxlan' ? { address: d.vxlan!.address } : {}),
          alias: aliasOf(d.link),
          master: d.master,
          up: true,
        });
        changes.push(`created ${d.kind} ${d.interfaceName}${d.master ? ` in ${d.master}` : ''}`);
      } else {
        const update: Parameters<typeof links.update>[0] = { ...at, name: d.interfaceName };
        const what: string[] = [];
        if (d.mtu !== null && existing.mtu !== d.mtu) {
          update.mtu = d.mtu;
          what.push(`mtu ${existing.mtu} → ${d.mtu}`);
        }
        if ((existing.master ?? null) !== d.master) {
          update.master = d.master;
          what.push(d.master ? `master → ${d.master}` : 'released from its master');
        }
        if (existing.alias !== aliasOf(d.link)) {
          update.alias = aliasOf(d.link);
          what.push('alias');
        }
        if (!existing.up) {
          update.up = true;
          what.push('up');
        }
        if (d.kind === 'bridge' && existing.bridge && (existing.bridge.stp !== d.bridge!.stp || existing.bridge.nfCallIptables === true)) {
          update.bridge = { stp: d.bridge!.stp, nfCallIptables: false };
          what.push('bridge settings');
        }
        if (what.length) {
          await links.update(update);
          changes.push(`updated ${d.interfaceName}: ${what.join(', ')}`);
        }
      }
      await refresh();
      if (d.kind === 'vxlan') changes.push(...(await syncMesh(d, at)));
      outcomes.set(d.link, { ok: true, reason: 'Ready', message: '' });
    } catch (error) {
      fail('KernelError', `${d.kind} ${d.interfaceName}: ${errorText(error)}`);
      await refresh();
    }
  }
  return { outcomes, changes };
}

/**
 * The VXLAN's all-zero FDB entries become exactly the mesh's peers (none for a `remote` VXLAN), and
 * its permanent per-MAC entries exactly the peers' device MACs when learning is off (none with
 * learning on: the kernel learns, and nothing permanent of nodenet's should override it).
 */
async function syncMesh(d: DesiredLink, at: { netns?: string }): Promise<string[]> {
  const changes: string[] = [];
  const entries = await fdb.list({ ...at, device: d.interfaceName });
  const have = new Set(entries.filter((e) => e.mac === ALL_ZERO_MAC && e.dst !== null).map((e) => e.dst!));
  const want = new Set(d.vxlan!.meshPeers);
  // With a remote group the kernel keeps its own all-zero entry for it: not a mesh peer to remove.
  if (d.vxlan!.group) have.delete(d.vxlan!.group);
  for (const dst of want) {
    if (have.has(dst)) continue;
    await fdb.add({ ...at, device: d.interfaceName, mac: ALL_ZERO_MAC, dst, append: true });
    changes.push(`${d.interfaceName}: mesh peer ${dst} added`);
  }
  for (const dst of have) {
    if (want.has(dst)) continue;
    await fdb.remove({ ...at, device: d.interfaceName, mac: ALL_ZERO_MAC, dst });
    changes.push(`${d.interfaceName}: mesh peer ${dst} removed`);
  }

  const key = (mac: string, dst: string) => `${mac}>${dst}`;
  const macs = new Map(entries.filter((e) => e.mac !== ALL_ZERO_MAC && e.dst !== null && e.permanent && e.self).map((e) => [key(e.mac, e.dst!), e]));
  const wantMacs = new Map(d.vxlan!.meshMacs.map((m) => [key(m.mac, m.dst), m]));
  for (const [k, m] of wantMacs) {
    if (macs.has(k)) continue;
    await fdb.add({ ...at, device: d.interfaceName, mac: m.mac, dst: m.dst });
    changes.push(`${d.interfaceName}: ${m.mac} via ${m.dst} added`);
  }
  for (const [k, e] of macs) {
    if (wantMacs.has(k)) continue;
    await fdb.remove({ ...at, device: d.interfaceName, mac: e.mac, dst: e.dst! });
    changes.push(`${d.interfaceName}: ${e.mac} via ${e.dst} removed`);
  }
  return changes;
}
