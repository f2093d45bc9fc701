// An informer that does not give up. client-node's ListWatch lists, watches, and relists by
// itself after 410 Gone, but any other error (a refused connection, a 403, a 500) ends it for
// good, silently keeping a cache that no longer follows the cluster. This wrapper restarts it with
// exponential backoff and jitter, keeps its cache meanwhile (the last known state is a better
// basis for the node than none), and says when the cache first holds a complete list ("synced").
//
// It also tells apart two kinds of removal that ListWatch reports alike: a DELETED watch event,
// and an object that was merely missing from a fresh list. The second is what a bad relist
// produces, and the mass-deletion guard treats it with suspicion.
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';

import { describeApiError } from './api-errors.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

export interface InformerEvent<T> {
  type: 'add' | 'update' | 'delete';
  object: T;
  /** The change came from applying a list (first sync or relist), not from a watch event. */
  fromList: boolean;
}

/** What the wrapper needs of client-node's ListWatch (a fake in unit tests). */
export interface InformerSource<T> {
  on(verb: 'add' | 'update' | 'delete', cb: (object: T) => void): void;
  on(verb: 'error', cb: (error?: unknown) => void): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  list(namespace?: string): readonly T[];
  get(name: string, namespace?: string): T | undefined;
}

export interface InformerLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** For logs and metrics ("services"). */
  name: string;
  kubeConfig: KubeConfig;
  /** The collection's API path, e.g. /api/v1/services. */
  path: string;
  /** Lists the collection with the same selectors as the watch. */
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Delays between restarts (default 1 s doubling up to 30 s, 20% jitter). */
  restart?: BackoffOptions;
  /** A run this long without an error resets the restart delay (default 60 s). */
  resetAfterMs?: number;
  timers?: Timers;
  log?: InformerLog;
  /** Builds the underlying ListWatch from the wrapped list function (replaced in unit tests). */
  source?: (list: () => Promise<KubernetesListObject<T>>) => InformerSource<T>;
}

export const DEFAULT_RESTART: BackoffOptions = { initialMs: 1000, maxMs: 30_000 };

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  private readonly source: InformerSource<T>;
  private readonly backoff: Backoff;
  private readonly timers: Timers;
  private readonly handlers: Array<(event: InformerEvent<T>) => void> = [];
  private readonly syncWaiters: Array<() => void> = [];
  private applyingList = false;
  private isSynced = false;
  private stopped = true;
  private restartTimer: TimerHandle | null = null;
  private runningSince = 0;
  private restartCount = 0;
  private lastErrorText: string | null = null;

  constructor(private readonly options: InformerOptions<T>) {
    this.name = options.name;
    this.timers = options.timers ?? realTimers;
    this.backoff = new Backoff(options.restart ?? DEFAULT_RESTART);
    const list = () => this.listed();
    this.source = options.source
      ? options.source(list)
      : new ListWatch<T>(options.path, new Watch(options.kubeConfig), list, false, options.labelSelector, options.fieldSelector);
    this.source.on('add', (o) => this.emit('add', o));
    this.source.on('update', (o) => this.emit('update', o));
    this.source.on('delete', (o) => this.emit('delete', o));
    this.source.on('error', (e) => this.failed(e));
  }

  /** The cache has held a complete list at least once. It stays true while the API is unreachable. */
  get synced(): boolean {
    return this.isSynced;
  }

  /** Restarts after errors since start(). */
  get restarts(): number {
    return this.restartCount;
  }

  /** The last error, until the next successful list or watch event. */
  get lastError(): string | null {
    return this.lastErrorText;
  }

  /** Calls `handler` for every change of the cache. */
  subscribe(handler: (event: InformerEvent<T>) => void): void {
    this.handlers.push(handler);
  }

  /** Every cached object. */
  list(): readonly T[] {
    return this.source.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.source.get(name, namespace);
  }

  /** Starts listing and watching; errors are retried, never thrown. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.run();
  }

  /** Resolves once synced (immediately if it is). */
  waitForSync(): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) this.timers.clearTimeout(this.restartTimer);
    this.restartTimer = null;
    await this.source.stop();
  }

  private run(): void {
    this.runningSince = this.timers.now();
    this.source.start().catch((e: unknown) => this.failed(e));
  }

  // ListWatch applies a list synchronously once the list promise resolves: every add, update and
  // delete it reports until the event loop turns comes from that list. setImmediate runs after
  // those microtasks and before any watch response can arrive.
  private async listed(): Promise<KubernetesListObject<T>> {
    const result = await this.options.list();
    this.applyingList = true;
    setImmediate(() => {
      this.applyingList = false;
      this.lastErrorText = null;
      if (!this.isSynced) {
        this.isSynced = true;
        this.options.log?.info({ informer: this.name, objects: this.source.list().length }, `informer ${this.name} synced`);
        this.syncWaiters.splice(0).forEach((wake) => wake());
      }
    });
    return result;
  }

  private emit(type: InformerEvent<T>['type'], object: T): void {
    const event = { type, object, fromList: this.applyingList };
    if (!this.applyingList) this.lastErrorText = null;
    for (const handler of this.handlers) handler(event);
  }

  private failed(error: unknown): void {
    if (this.stopped || this.restartTimer) return;
    if (this.timers.now() - this.runningSince >= (this.options.resetAfterMs ?? 60_000)) this.backoff.reset();
    const delay = this.backoff.next();
    this.restartCount++;
    this.lastErrorText = describeApiError(error);
    this.options.log?.warn(
      { informer: this.name, error: this.lastErrorText, retryInMs: delay, failures: this.backoff.failures },
      `informer ${this.name} stopped: ${this.lastErrorText}; restarting in ${(delay / 1000).toFixed(1)} s`,
    );
    this.restartTimer = this.timers.setTimeout(() => {
      this.restartTimer = null;
      if (!this.stopped) this.run();
    }, delay);
  }
}
