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
  private baseline = new Map<string, T>();
  private readonly announced = new Set<string>();
  private readonly holding = new Set<string>();
  private readonly minObjects: number;
  private readonly fraction: number;

  constructor(
    private readonly keyOf: (object: T) => string,
    options: MassDeletionGuardOptions = {},
  ) {
    this.minObjects = options.minObjects ?? 10;
    this.fraction = options.fraction ?? 0.5;
    if (!(this.fraction > 0 && this.fraction <= 1)) throw new RangeError(`fraction must be in (0, 1], not ${this.fraction}`);
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
    const present = new Set(current.map(this.keyOf));
    for (const key of this.holding) if (present.has(key)) this.holding.delete(key);
    for (const key of this.announced) if (present.has(key)) this.announced.delete(key);
    const vanished = [...this.baseline.keys()].filter((k) => !present.has(k) && !this.announced.has(k));
    if (this.baseline.size >= this.minObjects && vanished.length >= this.fraction * this.baseline.size) {
      for (const key of vanished) this.holding.add(key);
    }
    const held = [...this.holding].sort();
    return { objects: [...current, ...held.map((k) => this.baseline.get(k)!)], held };
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
    this.baseline = new Map(rendered.map((o) => [this.keyOf(o), o]));
    // Announcements only matter for objects still in the baseline.
    for (const key of this.announced) if (!this.baseline.has(key)) this.announced.delete(key);
  }
}
