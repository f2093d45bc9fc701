// A repeating timer for full resyncs: drift (a flushed chain, a deleted jump, another agent's
// edit) raises no event, so only a periodic look at the whole state repairs it.
import { realTimers, type TimerHandle, type Timers } from './timers.js';

export interface Periodic {
  stop(): void;
}

/** Calls fn every periodMs (the first time after one period) until stopped. */
export function every(periodMs: number, fn: () => void, timers: Timers = realTimers): Periodic {
  if (!(periodMs > 0)) throw new RangeError(`period must be > 0 ms, not ${periodMs}`);
  let handle: TimerHandle | null = null;
  const arm = () => {
    handle = timers.setTimeout(() => {
      arm();
      fn();
    }, periodMs);
  };
  arm();
  return {
    stop() {
      if (handle) timers.clearTimeout(handle);
      handle = null;
    },
  };
}
