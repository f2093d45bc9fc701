// Makes one device's root shaping match one plan, touching only what nodenet owns.
//
// Ownership is the handle: nodenet's root qdisc is 6e6e:, a tbf under its netem is 6e6f: at
// 6e6e:1. A root the kernel made itself (handle 0:, e.g. noqueue on a veth, pfifo_fast, mq) is
// nobody's and may be replaced; any other root belongs to someone else (the CNI bandwidth plugin,
// an operator's tc, Chaos Mesh) and is reported, never replaced or removed.
//
// A plan already in place costs one dump and no change, so a resync of a shaped node writes
// nothing. Parameters are compared as the kernel reports them: the wanted options are encoded and
// decoded through the same codec, so both sides carry the same rounding.
import { qdiscs } from '../../kernel/index.js';
import type { Qdisc, QdiscSpec } from '../../kernel/qdiscs/index.js';
import { NODENET_CHILD_HANDLE, NODENET_CHILD_PARENT, NODENET_ROOT_HANDLE } from '../../kernel/qdiscs/handles.js';
import { decodeNetem, encodeNetem, type NetemDistribution, type NetemOptions } from '../../kernel/qdiscs/netem.js';
import { decodeTbf, encodeTbf, type TbfOptions } from '../../kernel/qdiscs/tbf.js';
import type { NetemSpec, ShapingPlan, TbfSpec } from '../../model/shaping/index.js';

export interface DeviceTarget {
  /** The namespace holding the device; the caller's own when absent. */
  netns?: string;
  device: string;
}

export type SyncAction =
  /** Already as planned (or nothing planned and nothing of nodenet's there). */
  | 'unchanged'
  /** nodenet's qdisc installed where the kernel's default was. */
  | 'installed'
  /** nodenet's qdiscs changed in place (queues kept). */
  | 'changed'
  /** nodenet's root re-created (a kind change, or a delay distribution to drop). */
  | 'recreated'
  /** nodenet's qdiscs removed; the kernel's default is back. */
  | 'removed'
  /** Another root qdisc is there: left alone, nothing done. */
  | 'foreign';

export interface SyncResult {
  action: SyncAction;
  /** The root qdisc found before acting (null when the device had none listed). */
  before: Qdisc | null;
}

/** What nodenet applied to a device and the kernel cannot report back: netem's delay distribution. */
export type AppliedDistribution = NetemDistribution | 'unknown';

export interface SyncOptions {
  /**
   * The distribution last applied here; 'unknown' (the default: after a restart) is taken to match, since
   * re-creating a netem drops every packet it is delaying and the kernel cannot say.
   */
  distribution?: AppliedDistribution;
}

/** The root qdisc and, if nodenet's, its child. */
export async function readDevice(target: DeviceTarget): Promise<{ root: Qdisc | null; child: Qdisc | null }> {
  const all = await qdiscs.list({ device: target.device, ...(target.netns === undefined ? {} : { netns: target.netns }) });
  const root = all.find((q) => q.parent === 'root') ?? null;
  const child = root?.handle === NODENET_ROOT_HANDLE ? (all.find((q) => q.parent === NODENET_CHILD_PARENT) ?? null) : null;
  return { root, child };
}

/** A root the kernel attached by itself (handle 0:): replacing it takes nothing from anyone. */
export function isKernelDefault(q: Qdisc | null): boolean {
  return q === null || q.handle === '0:';
}

export function isOwned(q: Qdisc | null): boolean {
  return q !== null && q.handle === NODENET_ROOT_HANDLE;
}

function near(a: number, b: number, slack: number): boolean {
  return Math.abs(a - b) <= slack;
}

/** Whether the kernel's netem is the wanted one (distribution aside: the kernel does not report it). */
export function netemMatches(actual: Qdisc, wanted: NetemOptions): boolean {
  if (actual.kind !== 'netem' || !actual.netem) return false;
  const want = decodeNetem(encodeNetem(wanted));
  const have = actual.netem;
  return (Object.keys(want) as Array<keyof typeof want>).every((k) => want[k] === have[k]);
}

/**
 * Whether the kernel's tbf is the wanted one. The kernel keeps the bucket as a time and dumps it
 * in 64 ns ticks, so burst and mtu read back within a tick's worth of bytes of what was set.
 */
export function tbfMatches(actual: Qdisc, wanted: TbfOptions): boolean {
  if (actual.kind !== 'tbf' || !actual.tbf) return false;
  const want = decodeTbf(encodeTbf(wanted));
  const have = actual.tbf;
  const tick = (bitsPerSecond: number) => Math.ceil((bitsPerSecond / 8) * 64e-9) + 2;
  return (
    want.rate === have.rate &&
    want.peakrate === have.peakrate &&
    want.limit === have.limit &&
    want.overhead === have.overhead &&
    want.mpu === have.mpu &&
    near(want.burst, have.burst, tick(want.rate)) &&
    near(want.mtu, have.mtu, tick(want.peakrate))
  );
}

function specMatches(actual: Qdisc | null, spec: NetemSpec | TbfSpec | null): boolean {
  if (spec === null) return actual === null;
  if (actual === null) return false;
  return spec.kind === 'netem' ? netemMatches(actual, spec.netem) : tbfMatches(actual, spec.tbf);
}

function specOf(spec: NetemSpec | TbfSpec): QdiscSpec {
  return spec.kind === 'netem' ? { kind: 'netem', netem: spec.netem } : { kind: 'tbf', tbf: spec.tbf };
}

function distributionOf(plan: ShapingPlan): NetemDistribution {
  return plan.root.kind === 'netem' ? (plan.root.netem.distribution ?? 'uniform') : 'uniform';
}

/**
 * A distribution table stays until the qdisc is re-created (the kernel refuses an empty one), so
 * going from a known non-uniform table back to uniform jitter needs a new qdisc.
 */
function needsRecreate(plan: ShapingPlan, applied: AppliedDistribution): boolean {
  if (plan.root.kind !== 'netem' || !plan.root.netem.jitter) return false;
  return distributionOf(plan) === 'uniform' && applied !== 'unknown' && applied !== 'uniform';
}

/** The distribution to remember for a device after a successful sync. */
export function appliedDistribution(plan: ShapingPlan | null): NetemDistribution | undefined {
  return plan ? distributionOf(plan) : undefined;
}

/**
 * Makes the device's root shaping be `plan` (null: none of nodenet's). Returns what it did; a
 * foreign root leaves everything as it was. Kernel errors propagate (KernelError, with netem's
 * missing module named by the qdiscs API).
 */
export async function syncDevice(target: DeviceTarget, plan: ShapingPlan | null, options: SyncOptions = {}): Promise<SyncResult> {
  const at = { device: target.device, ...(target.netns === undefined ? {} : { netns: target.netns }) };
  const { root, child } = await readDevice(target);
  const owned = isOwned(root);

  if (plan === null) {
    if (!owned) return { action: 'unchanged', before: root };
    await qdiscs.remove({ ...at, parent: 'root' });
    return { action: 'removed', before: root };
  }
  if (!owned && !isKernelDefault(root)) return { action: 'foreign', before: root };

  const rootAt = { ...at, parent: 'root', handle: NODENET_ROOT_HANDLE };
  const childAt = { ...at, parent: NODENET_CHILD_PARENT, handle: NODENET_CHILD_HANDLE };
  if (!owned) {
    // Replace, not add: the kernel's default root is there and goes with this one call.
    await qdiscs.replace(rootAt, specOf(plan.root));
    if (plan.child) await qdiscs.add(childAt, specOf(plan.child));
    return { action: 'installed', before: root };
  }

  const applied = options.distribution ?? 'unknown';
  const wantedDist = distributionOf(plan);
  const recreate = root!.kind !== plan.root.kind || needsRecreate(plan, applied);
  // A non-uniform table is not reported back: re-send the netem when a different one is known to
  // be there (a change replaces the table in place).
  const tableStale = plan.root.kind === 'netem' && wantedDist !== 'uniform' && applied !== 'unknown' && applied !== wantedDist;
  const rootOk = !recreate && !tableStale && specMatches(root, plan.root);
  if (rootOk && specMatches(child, plan.child)) return { action: 'unchanged', before: root };
  if (recreate) {
    // The kernel will not change a qdisc's kind under the same handle: take it down and install.
    // If the new one is refused (a kernel without netem), the old one is put back, so a failed
    // change leaves the device as it was rather than unshaped.
    await qdiscs.remove({ ...at, parent: 'root' });
    try {
      await qdiscs.add(rootAt, specOf(plan.root));
      if (plan.child) await qdiscs.add(childAt, specOf(plan.child));
    } catch (error) {
      await restore(rootAt, childAt, root!, child).catch(() => undefined);
      throw error;
    }
    return { action: 'recreated', before: root };
  }
  // Same kind: change in place, so queued packets are kept.
  if (!rootOk) await qdiscs.update(rootAt, specOf(plan.root));
  if (plan.child === null) {
    if (child) await qdiscs.remove({ ...at, parent: NODENET_CHILD_PARENT });
  } else if (child === null || child.kind !== plan.child.kind) {
    await qdiscs.replace(childAt, specOf(plan.child));
  } else if (!specMatches(child, plan.child)) {
    await qdiscs.update(childAt, specOf(plan.child));
  }
  return { action: 'changed', before: root };
}

/** The spec that re-creates a qdisc nodenet reported (a netem's distribution table aside). */
function specFromReport(q: Qdisc): QdiscSpec | null {
  if (q.kind === 'netem' && q.netem) {
    const { lossModel: _model, ...netem } = q.netem;
    return { kind: 'netem', netem };
  }
  if (q.kind === 'tbf' && q.tbf) {
    const { peakrate, mtu, ...rest } = q.tbf;
    return { kind: 'tbf', tbf: peakrate ? { ...rest, peakrate, mtu } : rest };
  }
  return null;
}

async function restore(rootAt: qdiscs.QdiscTarget, childAt: qdiscs.QdiscTarget, root: Qdisc, child: Qdisc | null): Promise<void> {
  const rootSpec = specFromReport(root);
  if (!rootSpec) return;
  await qdiscs.add(rootAt, rootSpec);
  const childSpec = child ? specFromReport(child) : null;
  if (childSpec) await qdiscs.add(childAt, childSpec);
}

/** One line for logs and Events: "netem delay 100ms loss 1% with tbf 10Mbit". */
export function describePlan(plan: ShapingPlan | null): string {
  if (!plan) return 'none';
  const parts = [describeSpec(plan.root)];
  if (plan.child) parts.push(`with ${describeSpec(plan.child)}`);
  return parts.join(' ');
}

function ms(ns: number): string {
  return ns % 1_000_000 === 0 ? `${ns / 1_000_000}ms` : `${ns / 1000}us`;
}

function bits(rate: number): string {
  for (const [unit, size] of [
    ['Gbit', 1e9],
    ['Mbit', 1e6],
    ['Kbit', 1e3],
  ] as const) {
    if (rate >= size && rate % size === 0) return `${rate / size}${unit}`;
  }
  return `${rate}bit`;
}

function describeSpec(spec: NetemSpec | TbfSpec): string {
  if (spec.kind === 'tbf') return `tbf rate ${bits(spec.tbf.rate)} burst ${spec.tbf.burst}b`;
  const n = spec.netem;
  const out = ['netem'];
  if (n.delay) out.push(`delay ${ms(n.delay)}${n.jitter ? ` ${ms(n.jitter)}` : ''}${n.delayCorrelation ? ` ${n.delayCorrelation}%` : ''}`);
  if (n.distribution && n.distribution !== 'uniform') out.push(`distribution ${n.distribution}`);
  if (n.loss) out.push(`loss ${n.loss}%`);
  if (n.duplicate) out.push(`duplicate ${n.duplicate}%`);
  if (n.corrupt) out.push(`corrupt ${n.corrupt}%`);
  if (n.reorder) out.push(`reorder ${n.reorder}%${n.gap && n.gap > 1 ? ` gap ${n.gap}` : ''}`);
  if (n.rate) out.push(`rate ${bits(n.rate)}`);
  if (n.limit !== undefined) out.push(`limit ${n.limit}`);
  return out.join(' ');
}
