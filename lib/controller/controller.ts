// A controller: informers feed a level-triggered work queue, a periodic resync revisits every key,
// and nothing is reconciled before every informer has synced (a partial cache would look like
// deletions). Each subsystem (node fixes, shaping, overlays) is one Controller with its own
// reconcile function; they can share one Metrics registry and one health server.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import type { Check } from './health-server.js';
import type { InformerEvent } from './informer.js';
import type { InformerStatus, Metrics } from './metrics.js';
import { every, type Periodic } from './periodic.js';
import { realTimers, type Timers } from './timers.js';
import { WorkQueue, type WorkQueueOptions } from './work-queue.js';

/** What a controller needs of its informers, whatever their object types. */
export interface ControlledInformer extends InformerStatus {
  readonly lastError: string | null;
  start(): void;
  stop(): Promise<void>;
  waitForSync(): Promise<void>;
  subscribe(handler: (event: InformerEvent<KubernetesObject>) => void): void;
}

export interface ControllerOptions {
  /** Names the subsystem in logs and metrics, and is the single key of a whole-node controller. */
  name: string;
  informers: readonly ControlledInformer[];
  /** Makes one key's kernel state match the caches. Throwing schedules a retry with backoff. */
  reconcile(key: string): Promise<void>;
  /** Keys an informer change makes dirty (default: the controller's name, i.e. one whole-node key). */
  keysFor?(informer: string, event: InformerEvent<KubernetesObject>): string[];
  /** Every key a full resync revisits (default: the controller's name). */
  allKeys?(): string[];
  /** Full resync period (default 60 s). */
  resyncPeriodMs?: number;
  /** Called at each periodic resync, before its keys are queued. */
  onResync?(): void;
  queue?: Omit<WorkQueueOptions<string>, 'onSuccess' | 'onFailure' | 'timers'>;
  metrics?: Metrics;
  log: Logger;
  timers?: Timers;
}

export class Controller {
  readonly name: string;
  private readonly queue: WorkQueue<string>;
  private readonly failing = new Map<string, string>();
  private succeeded = false;
  private started = false;
  private stopped = false;
  private resync: Periodic | null = null;
  private readonly log: Logger;
  private readonly timers: Timers;

  constructor(private readonly options: ControllerOptions) {
    this.name = options.name;
    this.log = options.log;
    this.timers = options.timers ?? realTimers;
    this.queue = new WorkQueue<string>((key) => options.reconcile(key), {
      ...options.queue,
      timers: this.timers,
      onSuccess: (key, ms) => {
        this.succeeded = true;
        if (this.failing.delete(key)) this.log.info({ controller: this.name, key }, 'reconcile succeeded again');
        options.metrics?.reconcileDuration.observe({ controller: this.name, result: 'success' }, ms / 1000);
        options.metrics?.lastSuccess.set({ controller: this.name }, Date.now() / 1000);
      },
      onFailure: (key, error, retryInMs, ms) => {
        const text = error instanceof Error ? error.message : String(error);
        this.failing.set(key, text);
        options.metrics?.reconcileDuration.observe({ controller: this.name, result: 'error' }, ms / 1000);
        this.log.error({ controller: this.name, key, err: error, retryInMs }, `reconcile failed, retrying in ${(retryInMs / 1000).toFixed(1)} s: ${text}`);
      },
    });
    options.metrics?.watchInformers(options.informers);
  }

  /**
   * Starts the informers and, once all have synced, the first reconcile and the periodic resync.
   * Resolves when all have synced (never rejects: informers retry until stopped).
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const informer of this.options.informers) {
      informer.subscribe((event) => {
        if (!this.synced()) return; // the first reconcile after sync sees everything
        for (const key of this.options.keysFor?.(informer.name, event) ?? [this.name]) this.queue.add(key);
      });
      informer.start();
    }
    await Promise.all(this.options.informers.map((i) => i.waitForSync()));
    if (this.stopped) return;
    this.log.info({ controller: this.name }, 'every informer synced; reconciling');
    this.enqueueAll();
    this.resync = every(
      this.options.resyncPeriodMs ?? 60_000,
      () => {
        this.options.onResync?.();
        this.enqueueAll();
      },
      this.timers,
    );
  }

  /** Stops the resync and the informers and waits for a reconcile in progress. Kernel state stays. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.resync?.stop();
    await Promise.all(this.options.informers.map((i) => i.stop()));
    await this.queue.shutDown();
  }

  /** Queues a key (or every key) as an informer change would. */
  enqueue(key?: string): void {
    if (key === undefined) this.enqueueAll();
    else this.queue.add(key);
  }

  synced(): boolean {
    return this.options.informers.every((i) => i.synced);
  }

  /** Ready: every informer synced, at least one reconcile succeeded, and none is failing now. */
  readiness(): Check {
    const unsynced = this.options.informers.filter((i) => !i.synced).map((i) => i.name + (i.lastError ? ` (${i.lastError})` : ''));
    if (unsynced.length) return { ok: false, detail: `${this.name}: informers not synced: ${unsynced.join(', ')}` };
    if (this.failing.size) {
      const [key, error] = this.failing.entries().next().value!;
      return { ok: false, detail: `${this.name}: last reconcile of ${key} failed: ${error}` };
    }
    if (!this.succeeded) return { ok: false, detail: `${this.name}: no reconcile has completed yet` };
    return { ok: true, detail: `${this.name}: synced, last reconcile succeeded` };
  }

  private enqueueAll(): void {
    for (const key of this.options.allKeys?.() ?? [this.name]) this.queue.add(key);
  }
}

/** Readiness of several controllers: ready when all are. */
export function allReady(controllers: readonly Controller[]): Check {
  const checks = controllers.map((c) => c.readiness());
  return { ok: checks.every((c) => c.ok), detail: checks.map((c) => c.detail).join('; ') };
}
