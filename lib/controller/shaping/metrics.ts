// The shaping controller's metrics. Every label has a fixed set of values (never a pod name), so a
// node with thousands of pods and a long uptime has the same number of series as a fresh one.
import { Counter, Gauge, type Registry } from 'prom-client';

export const FAILURE_REASONS = [
  'invalid-annotation',
  'host-network',
  'pod-not-found',
  'interface-not-found',
  'ingress-not-shapeable',
  'foreign-qdisc',
  'kernel-error',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export class ShapingMetrics {
  /** Pods with nodenet's qdiscs, per direction. */
  readonly shapedPods: Gauge<'direction'>;
  /** Things that kept a pod from being shaped as asked, by reason. */
  readonly failures: Counter<'reason'>;
  /** Kernel changes made, by action (installed, changed, recreated, removed). */
  readonly changes: Counter<'action'>;
  /** Pods whose bandwidth annotation nodenet left to the CNI bandwidth plugin. */
  readonly deferred: Gauge;

  constructor(registry: Registry) {
    this.shapedPods = new Gauge({ name: 'nodenet_shaping_pods', help: "Pods carrying nodenet's qdiscs, per direction.", labelNames: ['direction'], registers: [registry] });
    this.failures = new Counter({ name: 'nodenet_shaping_failures_total', help: 'Pod shaping not applied as asked, by reason.', labelNames: ['reason'], registers: [registry] });
    this.changes = new Counter({ name: 'nodenet_shaping_changes_total', help: 'Qdisc changes made for pods, by action.', labelNames: ['action'], registers: [registry] });
    this.deferred = new Gauge({ name: 'nodenet_shaping_deferred_pods', help: 'Pods whose bandwidth annotations the CNI bandwidth plugin already applied.', registers: [registry] });
    for (const reason of FAILURE_REASONS) this.failures.inc({ reason }, 0);
    for (const direction of ['egress', 'ingress']) this.shapedPods.set({ direction }, 0);
  }
}
