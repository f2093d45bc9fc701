// The agent's Prometheus metrics. Cardinality is bounded by construction: labels name a
// controller, an informer, a feature, a table, an errno or a reason from a fixed set, never a
// Service, a rule or an address, so a cluster with 10,000 Services exports as many series as one
// with ten.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';


/** What the metrics read from an informer at scrape time. */
export interface InformerStatus {
  readonly name: string;
  readonly synced: boolean;
  readonly restarts: number;
}

export class Metrics {
  readonly registry = new Registry();

  readonly reconcileDuration = new Histogram({
    name: 'nodenet_reconcile_duration_seconds',
    help: 'Time one reconcile took, from reading the caches to the last kernel change.',
    labelNames: ['controller', 'result'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly lastSuccess = new Gauge({
    name: 'nodenet_last_successful_reconcile_timestamp_seconds',
    help: 'Unix time of the last reconcile that succeeded.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });

  readonly kernelErrors = new Counter({
    name: 'nodenet_kernel_errors_total',
    help: 'Kernel operations that failed, by operation and errno name.',
    labelNames: ['op', 'code'] as const,
    registers: [this.registry],
  });

  readonly events = new Counter({
    name: 'nodenet_kubernetes_events_total',
    help: 'Warning Events about objects: sent (created or updated), suppressed (same object and reason recently), throttled (node-wide cap) or failed.',
    labelNames: ['reason', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly massDeletionHeld = new Gauge({
    name: 'nodenet_mass_deletion_held_objects',
    help: 'Objects whose removal the mass-deletion guard holds back until a fresh list confirms it.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });

  private readonly informers: InformerStatus[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'nodenet_' });
    const informers = this.informers;
    new Gauge({
      name: 'nodenet_informer_synced',
      help: '1 once the informer has listed its collection completely.',
      labelNames: ['informer'] as const,
      registers: [this.registry],
      collect() {
        for (const i of informers) this.set({ informer: i.name }, i.synced ? 1 : 0);
      },
    });
    new Counter({
      name: 'nodenet_informer_restarts_total',
      help: 'Times an informer was restarted after a list or watch error.',
      labelNames: ['informer'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const i of informers) this.inc({ informer: i.name }, i.restarts);
      },
    });
  }

  /** Exports these informers' state. */
  watchInformers(informers: readonly InformerStatus[]): void {
    this.informers.push(...informers);
  }
}
