// The clock the controller framework schedules with. Injected so that queue and restart timing can
// be unit-tested step by step instead of by sleeping.

export type TimerHandle = { readonly id: unknown };

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Wall-clock timers that do not keep the process alive on their own. */
export const realTimers: Timers = {
  now: () => performance.now(),
  setTimeout(fn, ms) {
    const id = setTimeout(fn, ms);
    id.unref();
    return { id };
  },
  clearTimeout(handle) {
    clearTimeout(handle.id as NodeJS.Timeout);
  },
};
