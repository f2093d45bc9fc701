// The shaping controller's reconcile: one key per pod ("namespace/name"), plus one for garbage.
//
// A pod's key turns its annotations (through the model) into a qdisc plan per direction and makes
// the kernel match: egress on the pod's interface inside its namespace, ingress on the host-side
// peer of that interface (a veth's host end sends what the pod receives). Pods without shaping
// annotations and without anything nodenet put on them cost no kernel call at all.
//
// Per-pod problems (a bad annotation, a pod whose interface cannot be found, a foreign qdisc, a
// kernel without netem) are the pod owner's to fix: they become Events on the pod, a log line and a
// metric, and a retry with backoff where waiting can help, but never fail the controller (one bad
// pod must not make every node's agent unready).
//
// The garbage key runs after every full pass: nodenet's qdiscs (known by their handle) on the node's
// links and in the pod namespaces linked to the node that no pod wants any more are removed. That
// is also how a restarted agent cleans up after pods deleted while it was down.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { isKernelError, links, qdiscs } from '../../kernel/index.js';
import { desiredShaping, parseInterfaceName, type Direction, type PodShaping, type PreviousShaping, type ShapingPlan } from '../../model/shaping/index.js';
import { ANNOTATIONS } from '../../model/shaping/desired.js';
import { DEFAULT_INTERFACE } from '../../model/shaping/interface-name.js';
import { Backoff } from '../backoff.js';
import type { EventObject, EventRecorder } from '../events.js';
import type { Informer } from '../informer.js';
import type { Metrics } from '../metrics.js';
import { realTimers, type TimerHandle, type Timers } from '../timers.js';
import type { ShapingConfig } from './config.js';
import type { FailureReason, ShapingMetrics } from './metrics.js';
import { appliedDistribution, describePlan, isOwned, syncDevice, type AppliedDistribution, type DeviceTarget, type SyncAction } from './qdisc-sync.js';
import { findOwnedQdiscs, GONE_CODES, removeOwnedQdisc } from './owned.js';
import { resolveShapingTargets, stillValid, type ShapingTargets } from './shaping-targets.js';
import type { AppliedTimes } from './state-file.js';

export const CONTROLLER = 'shaping';
/** The garbage collection's key: no pod key can look like it (a pod key has a slash). */
export const GC_KEY = '~garbage';

const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];
const SHAPING_ANNOTATIONS = [ANNOTATIONS.egressNetem, ANNOTATIONS.ingressNetem, ANNOTATIONS.egressBandwidth, ANNOTATIONS.ingressBandwidth];
// Timers beyond this are re-armed: Node's timers overflow past 2^31 ms.
const MAX_TIMER_MS = 24 * 3600_000;

/** Where nodenet's qdiscs for one direction of a pod are (or were adopted as being). */
interface Placement {
  target: DeviceTarget;
  /** The device's index in its namespace: a name can come back as another pod's device. */
  ifindex: number;
  /** "node", or "nsid:N" for the pod namespace with id N in the node's: the garbage collection's key space. */
  space: string;
  distribution: AppliedDistribution;
  plan: ShapingPlan | null;
}

interface PodState {
  uid: string;
  previous: PreviousShaping | null;
  targets: ShapingTargets | null;
  placed: Record<Direction, Placement | null>;
  /** The CNI bandwidth plugin shaped this pod; nodenet leaves its bandwidth annotations to it. */
  deferred: boolean;
  expiryTimer: TimerHandle | null;
  retryTimer: TimerHandle | null;
  retry: Backoff;
}

export interface ShapingReconcilerOptions {
  config: ShapingConfig;
  nodeName: string;
  /** The node's network namespace (--netns); the agent's own when absent. */
  netns?: string;
  pods: Pick<Informer<V1Pod>, 'get' | 'list'>;
  namespaces: Pick<Informer<V1Namespace>, 'get'>;
  events: Pick<EventRecorder, 'warning' | 'normal'> | null;
  metrics: Metrics;
  shapingMetrics: ShapingMetrics;
  appliedTimes: AppliedTimes;
  log: Logger;
  timers?: Timers;
  /** The wall clock expiries are measured against. */
  now?: () => Date;
}

export function hasShapingAnnotations(pod: V1Pod): boolean {
  const a = pod.metadata?.annotations;
  return a !== undefined && SHAPING_ANNOTATIONS.some((name) => Object.hasOwn(a, name));
}

function keyOf(pod: V1Pod): string | null {
  const { namespace, name } = pod.metadata ?? {};
  return namespace && name ? `${namespace}/${name}` : null;
}

function podRef(pod: { namespace: string; name: string }, uid: string | undefined): EventObject {
  return { kind: 'Pod', apiVersion: 'v1', namespace: pod.namespace, name: pod.name, ...(uid ? { uid } : {}) };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Directions whose plan holds netem go first: a kernel without netem then fails before anything changed. */
function netemFirst(shaping: PodShaping): Direction[] {
  return [...DIRECTIONS].sort((a, b) => Number(shaping[b]?.root.kind === 'netem') - Number(shaping[a]?.root.kind === 'netem'));
}

export class ShapingReconciler {
  private readonly states = new Map<string, PodState>();
  private readonly timers: Timers;
  private readonly now: () => Date;
  private enqueueFn: (key: string) => void = () => {};

  constructor(private readonly o: ShapingReconcilerOptions) {
    this.timers = o.timers ?? realTimers;
    this.now = o.now ?? (() => new Date());
  }

  /** How the reconciler queues a key again (the controller's enqueue), set once the controller exists. */
  set enqueue(fn: (key: string) => void) {
    this.enqueueFn = fn;
  }

  /** Every key a full pass visits: pods that ask for shaping or carry some, then the garbage key. */
  allKeys(): string[] {
    const keys = new Set<string>();
    for (const pod of this.o.pods.list()) {
      const key = keyOf(pod);
      if (key && hasShapingAnnotations(pod)) keys.add(key);
    }
    for (const key of this.states.keys()) keys.add(key);
    return [...keys, GC_KEY];
  }

  /** Keys a pod or namespace change makes dirty. */
  keysFor(informer: string, object: V1Pod | V1Namespace): string[] {
    if (informer === 'pods') {
      const key = keyOf(object as V1Pod);
      return key && (hasShapingAnnotations(object as V1Pod) || this.states.has(key)) ? [key] : [];
    }
    // A namespace's label opens or closes netem for its pods.
    const ns = object.metadata?.name;
    return ns ? this.allKeys().filter((k) => k.startsWith(`${ns}/`)) : [];
  }

  /** Keys of pods with shaping, for a change of the node's links (a re-created sandbox). */
  shapedKeys(): string[] {
    return [...this.states.keys()];
  }

  async reconcile(key: string): Promise<void> {
    if (key === GC_KEY) return this.collectGarbage();
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const pod = this.o.pods.get(name, namespace);
    let state = this.states.get(key);
    const finished = pod?.status?.phase === 'Succeeded' || pod?.status?.phase === 'Failed';
    if (!pod || finished || pod.spec?.nodeName !== this.o.nodeName) {
      if (state) await this.unshape(key, state, pod ? `the pod ${finished ? 'has finished' : 'left this node'}` : 'the pod was deleted');
      return;
    }
    const uid = pod.metadata?.uid ?? '';
    if (state && state.uid !== uid) {
      // Same name, new pod: what was placed belongs to the old one's sandbox.
      await this.unshape(key, state, 'the pod was re-created');
      state = undefined;
    }
    if (!state && !hasShapingAnnotations(pod)) return;
    state ??= this.newState(uid, pod);
    this.states.set(key, state);
    await this.shape(key, pod, state);
  }

  private newState(uid: string, pod: V1Pod): PodState {
    const appliedAt = this.o.appliedTimes.get(uid);
    const annotated = pod.metadata?.annotations?.[ANNOTATIONS.interface];
    const iface = annotated === undefined ? DEFAULT_INTERFACE : (() => {
      const p = parseInterfaceName(ANNOTATIONS.interface, annotated);
      return p.ok ? p.value : DEFAULT_INTERFACE;
    })();
    return {
      uid,
      // After a restart only the start of the shaping is known; the plans are what the kernel holds.
      previous: appliedAt ? { interface: iface, egress: null, ingress: null, appliedAt, expiresAt: null } : null,
      targets: null,
      placed: { egress: null, ingress: null },
      deferred: false,
      expiryTimer: null,
      retryTimer: null,
      retry: new Backoff({ initialMs: 1000, maxMs: 60_000 }),
    };
  }

  private async shape(key: string, pod: V1Pod, state: PodState): Promise<void> {
    const { log } = this.o;
    const ref = { namespace: pod.metadata!.namespace!, name: pod.metadata!.name! };
    const object = podRef(ref, state.uid);
    const labels = this.o.namespaces.get(ref.namespace)?.metadata?.labels;
    const desired = desiredShaping(
      { metadata: { ...ref, ...(pod.metadata?.annotations ? { annotations: pod.metadata.annotations } : {}) }, spec: { hostNetwork: pod.spec?.hostNetwork ?? false } },
      labels,
      this.now(),
      state.previous,
    );
    this.report(object, desired);
    const wants = desired.egress !== null || desired.ingress !== null;
    const keeps = desired.kept.egress || desired.kept.ingress;
    const placed = state.placed.egress !== null || state.placed.ingress !== null;
    if (!wants && !keeps && !placed) {
      // Kept while the annotations are there: an expired pod must stay expired, which needs the
      // time its shaping began.
      if (hasShapingAnnotations(pod)) {
        state.previous = { interface: desired.interface, egress: null, ingress: null, appliedAt: desired.appliedAt, expiresAt: desired.expiresAt };
      } else {
        this.forget(key, state);
        this.o.appliedTimes.set(state.uid, null);
      }
      return;
    }

    const podIP = pod.status?.podIP ?? null;
    let targets: ShapingTargets | null = null;
    if (wants || keeps) {
      const located = await this.targetsOf(state, podIP, desired.interface);
      if (typeof located === 'string') {
        const detail = `cannot find interface ${desired.interface} of the pod on this node${podIP ? ` (pod IP ${podIP}): ${located}` : ' (the pod has no IP yet)'}`;
        if (podIP) this.fail(object, 'pod-not-found', 'PodInterfaceNotFound', `${detail}; shaping waits and is retried`);
        else log.debug({ pod: key }, detail);
        this.retryLater(key, state);
        return;
      }
      targets = located;
    }

    const actions: Array<{ direction: Direction; action: SyncAction; where: string; plan: ShapingPlan | null }> = [];
    // Anything placed where the pod no longer is (nothing wanted, a new sandbox, another
    // interface) is undone first.
    for (const d of DIRECTIONS) {
      const p = state.placed[d];
      if (!p || this.sameLocation(p, d, targets)) continue;
      try {
        if (await this.undo(p)) {
          actions.push({ direction: d, action: 'removed', where: this.where(d, p.target), plan: null });
          this.o.shapingMetrics.changes.inc({ action: 'removed' });
        }
      } catch (error) {
        log.warn({ pod: key, direction: d, err: error }, `cannot remove shaping from ${p.target.device}`);
      }
      state.placed[d] = null;
    }
    let failed = false;
    const deferredBefore = state.deferred;
    state.deferred = false;
    for (const d of netemFirst(desired)) {
      const location = targets ? this.locationOf(d, targets) : null;
      if (desired.kept[d]) {
        // Leave the kernel as it is; what is there stays nodenet's and out of the garbage.
        if (location && !state.placed[d]) state.placed[d] = { ...location, distribution: 'unknown', plan: null };
        continue;
      }
      let plan = desired[d];
      if (!location) {
        if (plan && targets) {
          this.fail(object, 'ingress-not-shapeable', 'IngressNotShapeable', `ingress shaping not applied: ${targets.hostDetail ?? `interface ${desired.interface} has no host-side peer`}`);
        }
        continue;
      }
      if (plan && targets?.hostDevice) plan = await this.deferToCni(object, d, plan, targets, state);
      try {
        const result = await syncDevice(location.target, plan, { distribution: state.placed[d]?.distribution ?? 'unknown' });
        if (result.action === 'foreign') {
          const q = result.before!;
          this.fail(
            object,
            'foreign-qdisc',
            'ForeignQdisc',
            `${d} shaping (${describePlan(plan)}) not applied: ${this.where(d, location.target)} already has a ${q.kind} qdisc (handle ${q.handle}) that nodenet does not own; remove it to let nodenet shape this pod`,
          );
          state.placed[d] = null;
          continue;
        }
        state.placed[d] = plan ? { ...location, distribution: appliedDistribution(plan) ?? 'uniform', plan } : null;
        if (result.action !== 'unchanged') {
          actions.push({ direction: d, action: result.action, where: this.where(d, location.target), plan });
          this.o.shapingMetrics.changes.inc({ action: result.action });
        }
      } catch (error) {
        if (isKernelError(error)) this.o.metrics.kernelErrors.inc({ op: error.op, code: error.code });
        this.fail(object, 'kernel-error', 'ShapingFailed', `${d} shaping (${describePlan(plan)}) on ${this.where(d, location.target)} failed: ${errorText(error)}`);
        failed = true;
        break;
      }
    }
    if (state.deferred !== deferredBefore) this.o.shapingMetrics.deferred.inc(state.deferred ? 1 : -1);
    state.targets = targets;

    if (actions.length) {
      const removedAll = state.placed.egress === null && state.placed.ingress === null;
      const text = actions.map((a) => `${a.direction} on ${a.where}: ${a.action === 'removed' ? 'removed' : describePlan(a.plan)}`).join('; ');
      if (removedAll) this.o.events?.normal(object, 'ShapingRemoved', `nodenet removed its shaping (${text})`, text);
      else this.o.events?.normal(object, 'Shaped', `nodenet shaped the pod: ${text}`, text);
      log.info({ pod: key, actions: actions.map((a) => ({ direction: a.direction, action: a.action, where: a.where })) }, `shaping of ${key}: ${text}`);
    }
    this.countShaped();
    if (failed) {
      // Nothing after the failed step changed; previous stays the last shaping acted on.
      this.retryLater(key, state);
      return;
    }
    state.retry.reset();
    state.previous = { interface: desired.interface, egress: desired.egress, ingress: desired.ingress, appliedAt: desired.appliedAt, expiresAt: desired.expiresAt };
    this.o.appliedTimes.set(state.uid, desired.appliedAt);
    this.armExpiry(key, state, desired.expiresAt);
    if (state.placed.egress === null && state.placed.ingress === null && !hasShapingAnnotations(pod)) {
      this.forget(key, state);
      this.o.appliedTimes.set(state.uid, null);
    }
  }

  private where(d: Direction, target: DeviceTarget): string {
    return d === 'egress' ? `${target.device} in the pod` : `${target.device} on the node`;
  }

  private locationOf(d: Direction, t: ShapingTargets): Omit<Placement, 'distribution' | 'plan'> | null {
    if (d === 'egress') {
      return { target: { netns: t.netnsPath, device: t.podDevice.name }, ifindex: t.podDevice.index, space: t.podNetnsId === null ? `path:${t.netnsPath}` : `nsid:${t.podNetnsId}` };
    }
    if (!t.hostDevice) return null;
    return { target: { ...(this.o.netns === undefined ? {} : { netns: this.o.netns }), device: t.hostDevice.name }, ifindex: t.hostDevice.index, space: 'node' };
  }

  private sameLocation(p: Placement, d: Direction, t: ShapingTargets | null): boolean {
    const now = t ? this.locationOf(d, t) : null;
    return now !== null && now.space === p.space && now.ifindex === p.ifindex && now.target.device === p.target.device && now.target.netns === p.target.netns;
  }

  private async targetsOf(state: PodState, podIP: string | null, interfaceName: string): Promise<ShapingTargets | string> {
    const options = this.resolveOptions();
    if (state.targets && state.targets.podDevice.name === interfaceName && (await stillValid(state.targets, options))) return state.targets;
    const found = await resolveShapingTargets({ ip: podIP, uid: state.uid }, interfaceName, options);
    return found.kind === 'found' ? found.targets : found.detail;
  }

  private resolveOptions() {
    const c = this.o.config;
    return {
      ...(this.o.netns === undefined ? {} : { netns: this.o.netns }),
      netnsDirs: c.netnsDirs,
      ...(c.procRoot === null ? { useProc: false } : { procRoot: c.procRoot }),
    };
  }

  /**
   * The CNI bandwidth plugin applies kubernetes.io/*-bandwidth itself when the sandbox is made: a
   * tbf at the host veth's root (ingress) and an ingress qdisc redirecting to its "bwp…" ifb
   * (egress). Shaping the same cap twice would halve nothing and confuse everyone, so nodenet
   * leaves the cap to it and says so; netem, which the plugin does not do, still applies.
   */
  private async deferToCni(object: EventObject, d: Direction, plan: ShapingPlan, t: ShapingTargets, state: PodState): Promise<ShapingPlan | null> {
    const tbf = plan.root.kind === 'tbf' ? plan.root : plan.child;
    if (!tbf) return plan;
    const at = this.o.netns === undefined ? {} : { netns: this.o.netns };
    const onHost = await qdiscs.list({ ...at, device: t.hostDevice!.name });
    let evidence: string | null = null;
    if (d === 'ingress') {
      const root = onHost.find((q) => q.parent === 'root');
      if (root && root.kind === 'tbf' && !isOwned(root) && root.handle !== '0:') evidence = `${t.hostDevice!.name} already has the plugin's tbf (handle ${root.handle})`;
    } else if (onHost.some((q) => q.kind === 'ingress')) {
      const ifb = (await links.list(at)).find((l) => l.kind === 'ifb' && l.name.startsWith('bwp'));
      if (ifb) evidence = `${t.hostDevice!.name} redirects to the plugin's ${ifb.name}`;
    }
    if (!evidence) return plan;
    state.deferred = true;
    this.o.events?.normal(
      object,
      'BandwidthByCNI',
      `kubernetes.io/${d}-bandwidth is left to the CNI bandwidth plugin (${evidence}); it applied the value the pod had when its sandbox was made and does not follow edits`,
      d,
    );
    return plan.root.kind === 'tbf' ? null : { root: plan.root, child: null };
  }

  private report(object: EventObject, desired: PodShaping): void {
    for (const f of desired.findings) {
      const fields = { pod: `${object.namespace}/${object.name}`, reason: f.reason };
      if (f.severity === 'warning') {
        this.o.log.warn(fields, f.message);
        const reason: FailureReason = f.reason === 'HostNetwork' ? 'host-network' : 'invalid-annotation';
        this.o.shapingMetrics.failures.inc({ reason });
        this.o.events?.warning(object, f.reason, f.message, f.message);
      } else {
        this.o.log.info(fields, f.message);
        this.o.events?.normal(object, f.reason, f.message, f.message);
      }
    }
  }

  private fail(object: EventObject, reason: FailureReason, eventReason: string, message: string): void {
    this.o.log.warn({ pod: `${object.namespace}/${object.name}`, reason: eventReason }, message);
    this.o.shapingMetrics.failures.inc({ reason });
    this.o.events?.warning(object, eventReason, message, message);
  }

  private retryLater(key: string, state: PodState): void {
    if (state.retryTimer) this.timers.clearTimeout(state.retryTimer);
    state.retryTimer = this.timers.setTimeout(() => {
      state.retryTimer = null;
      this.enqueueFn(key);
    }, state.retry.next());
  }

  private armExpiry(key: string, state: PodState, expiresAt: Date | null): void {
    if (state.expiryTimer) this.timers.clearTimeout(state.expiryTimer);
    state.expiryTimer = null;
    if (!expiresAt) return;
    const ms = Math.max(0, expiresAt.getTime() - this.now().getTime()) + 10;
    state.expiryTimer = this.timers.setTimeout(() => {
      state.expiryTimer = null;
      this.enqueueFn(key);
    }, Math.min(ms, MAX_TIMER_MS));
  }

  private forget(key: string, state: PodState): void {
    if (state.expiryTimer) this.timers.clearTimeout(state.expiryTimer);
    if (state.retryTimer) this.timers.clearTimeout(state.retryTimer);
    if (state.deferred) this.o.shapingMetrics.deferred.dec();
    this.states.delete(key);
    this.countShaped();
  }

  /** Removes what was placed for a pod that is gone, finished or re-created. */
  private async unshape(key: string, state: PodState, why: string): Promise<void> {
    const removed: string[] = [];
    for (const d of DIRECTIONS) {
      const p = state.placed[d];
      if (!p) continue;
      try {
        if (await this.undo(p)) {
          removed.push(`${d} on ${p.target.device}`);
          this.o.shapingMetrics.changes.inc({ action: 'removed' });
        }
        state.placed[d] = null;
      } catch (error) {
        this.o.log.warn({ pod: key, direction: d, err: error }, `cannot remove shaping from ${p.target.device} (${why}); retrying`);
        this.retryLater(key, state);
        return;
      }
    }
    if (removed.length) this.o.log.info({ pod: key, removed }, `${why}: removed nodenet's shaping (${removed.join(', ')})`);
    this.o.appliedTimes.set(state.uid, null);
    this.forget(key, state);
  }

  /** Removes nodenet's root from a placement if that device is still the one placed on. */
  private async undo(p: Placement): Promise<boolean> {
    try {
      const there = await links.list(p.target.netns === undefined ? {} : { netns: p.target.netns });
      if (!there.some((l) => l.index === p.ifindex && l.name === p.target.device)) return false;
      return (await syncDevice(p.target, null)).action === 'removed';
    } catch (error) {
      if (isKernelError(error) && GONE_CODES.has(error.code)) return false;
      throw error;
    }
  }

  private countShaped(): void {
    for (const d of DIRECTIONS) this.o.shapingMetrics.shapedPods.set({ direction: d }, [...this.states.values()].filter((s) => s.placed[d]?.plan).length);
  }

  /**
   * Removes nodenet's qdiscs no pod wants: on the node's links, and in every runtime namespace
   * the node namespace has an id for (a pod namespace joined to the node by a veth; others are not
   * this node's pods). Runs after a full pass, so every pod that wants shaping has placed it.
   */
  private async collectGarbage(): Promise<void> {
    const wanted = new Set<string>();
    for (const s of this.states.values()) for (const d of DIRECTIONS) if (s.placed[d]) wanted.add(`${s.placed[d]!.space}/${s.placed[d]!.ifindex}`);
    let removed = 0;
    for (const q of await findOwnedQdiscs({ ...(this.o.netns === undefined ? {} : { netns: this.o.netns }), netnsDirs: this.o.config.netnsDirs })) {
      if (wanted.has(`${q.space}/${q.ifindex}`) || !(await removeOwnedQdisc(q))) continue;
      removed++;
      this.o.shapingMetrics.changes.inc({ action: 'removed' });
      this.o.log.info({ space: q.space, device: q.device, kind: q.kind }, `removed nodenet's ${q.kind} from ${q.device}: no pod on this node wants it`);
    }
    this.o.appliedTimes.retain(new Set(this.o.pods.list().flatMap((p) => (p.metadata?.uid ? [p.metadata.uid] : []))));
    if (removed) this.o.log.info({ removed }, `garbage collection removed ${removed} of nodenet's qdiscs`);
  }
}
