// Exponential backoff with jitter: the delay before the next attempt after consecutive failures.
// Jitter spreads the retries of many nodes' agents so that they do not hit the API server (or one
// node's xtables lock) in lock step.

export interface BackoffOptions {
  /** Delay after the first failure. */
  initialMs: number;
  /** The delay never grows beyond this. */
  maxMs: number;
  /** Growth per failure (default 2). */
  factor?: number;
  /** Each delay is drawn uniformly from [d * (1 - jitter), d]; 0 disables it (default 0.2). */
  jitter?: number;
  /** A source of [0, 1) numbers (default Math.random). */
  random?: () => number;
}

export class Backoff {
  private failureCount = 0;
  private readonly factor: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs, not ${options.initialMs} and ${options.maxMs}`);
    }
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
    if (this.factor < 1) throw new RangeError(`backoff factor must be >= 1, not ${this.factor}`);
    if (this.jitter < 0 || this.jitter >= 1) throw new RangeError(`backoff jitter must be in [0, 1), not ${this.jitter}`);
  }

  /** Consecutive failures recorded since the last reset. */
  get failures(): number {
    return this.failureCount;
  }

  /** Records a failure and returns how long to wait before the next attempt. */
  next(): number {
    const exponent = Math.min(this.failureCount, 64);
    this.failureCount++;
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * this.factor ** exponent);
    return Math.round(ceiling * (1 - this.jitter * this.random()));
  }

  /** After a success: the next failure waits initialMs again. */
  reset(): void {
    this.failureCount = 0;
  }
}
