// A level-triggered work queue. A key says "this part of the node may be out of date"; processing
// it recomputes that part's whole desired state, so any number of adds while a key waits or runs
// fold into one more run. The batch delay is a leading edge, not a wait: a key that has not run
// for batchDelayMs runs at once (a lone Service change reaches the kernel without sitting out a
// timer), and one that ran more recently waits until batchDelayMs after that run started, so a
// stream of events still costs at most one run per key per batchDelayMs. Failures are retried with per-key exponential backoff; a key waiting
// for its retry is not pulled forward by new adds (the retry will see their changes anyway), which
// keeps a persistent failure from turning every cluster event into another attempt.
import { Backoff, type BackoffOptions } from './backoff.js';
import { realTimers, type TimerHandle, type Timers } from './timers.js';

export interface WorkQueueOptions<K> {
  /**
   * The least time between the starts of two runs of one key (default 100 ms): an add runs the key
   * at once when its last run started longer ago, else when this much has passed since then.
   */
  batchDelayMs?: number;
  /** Retry delays after consecutive failures of one key (default 1 s doubling up to 60 s, 20% jitter). */
  retry?: BackoffOptions;
  /** Keys processed at once; one key never runs twice at the same time (default 1). */
  workers?: number;
  timers?: Timers;
  /** Called after each successful run. */
  onSuccess?(key: K, durationMs: number): void;
  /** Called after each failed run with the delay before its retry. */
  onFailure?(key: K, error: unknown, retryInMs: number, durationMs: number): void;
}

export const DEFAULT_RETRY: BackoffOptions = { initialMs: 1000, maxMs: 60_000 };

export class WorkQueue<K> {
  private readonly waiting = new Map<K, { handle: TimerHandle; retry: boolean }>();
  private readonly ready: K[] = [];
  private readonly running = new Set<K>();
  private readonly dirty = new Set<K>();
  private readonly backoffs = new Map<K, Backoff>();
  /** When each key's last run started (pruned of entries older than the batch delay). */
  private readonly started = new Map<K, number>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly batchDelayMs: number;
  private readonly workers: number;
  private readonly timers: Timers;
  private stopped = false;

  constructor(
    private readonly process: (key: K) => Promise<void>,
    private readonly options: WorkQueueOptions<K> = {},
  ) {
    this.batchDelayMs = options.batchDelayMs ?? 100;
    this.workers = options.workers ?? 1;
    this.timers = options.timers ?? realTimers;
    if (!(this.workers >= 1)) throw new RangeError(`workers must be >= 1, not ${this.workers}`);
  }

  /** Marks a key as needing a run. */
  add(key: K): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key) || this.ready.includes(key)) return;
    this.schedule(key, this.spacing(key), false);
  }

  /** Keys waiting or ready to run (not those running). */
  get length(): number {
    return this.waiting.size + this.ready.length;
  }

  /** Consecutive failures of a key so far (0 after a success). */
  failures(key: K): number {
    return this.backoffs.get(key)?.failures ?? 0;
  }

  /** Whether the key is waiting for a retry after a failure. */
  retrying(key: K): boolean {
    return this.waiting.get(key)?.retry ?? false;
  }

  /** Stops taking and scheduling work; resolves once the runs in progress have finished. */
  async shutDown(): Promise<void> {
    this.stopped = true;
    for (const { handle } of this.waiting.values()) this.timers.clearTimeout(handle);
    this.waiting.clear();
    this.ready.length = 0;
    this.dirty.clear();
    await this.idle();
  }

  /** Resolves when no run is in progress. */
  idle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // How long a key must still wait so that its runs start at least batchDelayMs apart.
  private spacing(key: K): number {
    const last = this.started.get(key);
    if (last === undefined) return 0;
    const wait = last + this.batchDelayMs - this.timers.now();
    if (wait > 0) return wait;
    this.started.delete(key);
    return 0;
  }

  private schedule(key: K, delayMs: number, retry: boolean): void {
    const handle = this.timers.setTimeout(() => {
      this.waiting.delete(key);
      this.ready.push(key);
      this.pump();
    }, delayMs);
    this.waiting.set(key, { handle, retry });
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.workers && this.ready.length > 0) {
      void this.run(this.ready.shift()!);
    }
  }

  private async run(key: K): Promise<void> {
    this.running.add(key);
    const started = this.timers.now();
    this.started.set(key, started);
    let retryInMs: number | null = null;
    try {
      await this.process(key);
      this.backoffs.delete(key);
      this.options.onSuccess?.(key, this.timers.now() - started);
    } catch (error) {
      let backoff = this.backoffs.get(key);
      if (!backoff) this.backoffs.set(key, (backoff = new Backoff(this.options.retry ?? DEFAULT_RETRY)));
      retryInMs = backoff.next();
      this.options.onFailure?.(key, error, retryInMs, this.timers.now() - started);
    } finally {
      this.running.delete(key);
    }
    if (!this.stopped) {
      if (retryInMs !== null) {
        // The retry recomputes everything, so it also covers adds made during this run.
        this.dirty.delete(key);
        this.schedule(key, retryInMs, true);
      } else if (this.dirty.delete(key)) {
        this.schedule(key, this.spacing(key), false);
      }
      // Keys come and go (one per pod for shaping): forget start times that no longer space anything.
      if (this.started.size > 1024) {
        const now = this.timers.now();
        for (const [k, at] of this.started) if (at + this.batchDelayMs <= now) this.started.delete(k);
      }
      this.pump();
    }
    if (this.running.size === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
  }
}
