// The guard against applying a mass deletion that nobody asked for.
//
// An informer learns that an object is gone in one of two ways: a DELETED watch event (the API
// server saw it deleted), or its absence from a list (first sync or relist). A list can be wrong:
// an API server restored from an old or empty etcd, a proxy answering with an empty list, a bug.
// Applying such a list would strip every node of its rules at once. So:
//
//   baseline  = the objects the last successful apply was rendered from
//   vanished  = baseline objects missing from the cache whose removal no DELETED event announced
//   HOLD      when baseline >= minObjects (10) and vanished >= fraction (50%) of the baseline:
//             the vanished objects are rendered from their last known state, as if still there;
//             everything else (additions, updates, announced deletions) is applied as usual.
//   A held object stays held, whatever the counts do later, until one of:
//     - it is back in the cache (the bad list is over);
//     - a DELETED event for it arrives;
//     - a later periodic resync lists the collection afresh from the API server (not the cache)
//       and it is not in that list: then its removal is confirmed and applied. A fresh list that
//       fails confirms nothing (keep kernel state while the API is unreachable).
// Before the first successful apply there is no baseline and nothing is held.

export interface MassDeletionGuardOptions {
  /** Smallest baseline the guard acts on (default 10). */
  minObjects?: number;
  /** Share of the baseline that must vanish unannounced to hold the removal (default 0.5). */
  fraction?: number;
}

export interface GuardDecision<T> {
  /** What to render: the cache's objects plus the held ones, in the cache's order then the held. */
  objects: T[];
  /** Keys whose removal is held back. */
  held: string[];
}

export class MassDeletionGuard<T> {
  // What the last successful apply was rendered from, as handed in: its by-key map is built only
  // when a held object must be found in it, so an ordinary reconcile costs no Map of every object.
  private baseline: readonly T[] = [];
  private baselineByKey: Map<string, T> | null = null;
  private readonly announced = new Set<string>();
  private readonly holding = new Set<string>();
  private readonly minObjects: number;
  private readonly fraction: number;

  // Every reconcile hands in every object: keys are remembered per object (an unchanged object is
  // the same one each time), so they are neither rebuilt nor re-hashed.
  private readonly keys = new WeakMap<object, string>();

  constructor(
    private readonly makeKey: (object: T) => string,
    options: MassDeletionGuardOptions = {},
  ) {
    this.minObjects = options.minObjects ?? 10;
    this.fraction = options.fraction ?? 0.5;
    if (!(this.fraction > 0 && this.fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], not ${this.fraction}`);
  }

  private keyOf(object: T): string {
    if (typeof object !== 'object' || object === null) return this.makeKey(object);
    let key = this.keys.get(object);
    if (key === undefined) this.keys.set(object, (key = this.makeKey(object)));
    return key;
  }

  /** Keys currently held back. */
  get held(): string[] {
    return [...this.holding].sort();
  }

  /** A DELETED watch event: the removal is real. */
  deleted(key: string): void {
    this.announced.add(key);
    this.holding.delete(key);
  }

  /** Decides what to render from the objects in the cache now. */
  decide(current: readonly T[]): GuardDecision<T> {
    const present = new Set<string>();
    for (const o of current) present.add(this.keyOf(o));
    for (const key of this.holding) if (present.has(key)) this.holding.delete(key);
    for (const key of this.announced) if (present.has(key)) this.announced.delete(key);
    const vanished: string[] = [];
    for (const o of this.baseline) {
      const k = this.keyOf(o);
      if (!present.has(k) && !this.announced.has(k)) vanished.push(k);
    }
    if (this.baseline.length >= this.minObjects && vanished.length >= this.fraction * this.baseline.length) {
      for (const key of vanished) this.holding.add(key);
    }
    if (this.holding.size === 0) return { objects: [...current], held: [] };
    const held = [...this.holding].sort();
    const byKey = this.baselineMap();
    return { objects: [...current, ...held.map((k) => byKey.get(k)!)], held };
  }

  /**
   * A fresh list from the API server, made by a periodic resync while something is held. Held
   * objects it does not contain are confirmed gone; returns those still listed (the cache is behind).
   */
  confirm(listedKeys: ReadonlySet<string>): { confirmed: string[]; stillListed: string[] } {
    const confirmed: string[] = [];
    const stillListed: string[] = [];
    for (const key of [...this.holding].sort()) {
      if (listedKeys.has(key)) {
        stillListed.push(key);
      } else {
        this.holding.delete(key);
        this.announced.add(key);
        confirmed.push(key);
      }
    }
    return { confirmed, stillListed };
  }

  /** After a successful apply: what it was rendered from becomes the baseline. */
  applied(rendered: readonly T[]): void {
    this.baseline = [...rendered];
    this.baselineByKey = null;
    // Announcements only matter for objects still in the baseline.
    if (this.announced.size) {
      const byKey = this.baselineMap();
      for (const key of this.announced) if (!byKey.has(key)) this.announced.delete(key);
    }
  }

  private baselineMap(): Map<string, T> {
    if (!this.baselineByKey) {
      this.baselineByKey = new Map();
      for (const o of this.baseline) this.baselineByKey.set(this.keyOf(o), o);
    }
    return this.baselineByKey;
  }
}
