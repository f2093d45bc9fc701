// When each pod's shaping was first applied, kept in a small file so a duration-form expiry
// ("nodenet.io/shaping-expires: 30m") keeps counting from the first apply across agent restarts
// instead of starting again with every restart. Keyed by pod UID: a re-created pod of the same
// name is a new pod. Written whole to a temporary file and renamed, so a crash leaves the old
// or the new content, never half of either.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface StateLog {
  warn(fields: object, message: string): void;
}

export class AppliedTimes {
  private readonly times = new Map<string, number>();
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly path: string | null,
    private readonly log: StateLog,
  ) {}

  /** Reads the file; a missing or unreadable one is an empty start (logged when unreadable). */
  async load(): Promise<void> {
    if (!this.path) return;
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENOENT') this.log.warn({ path: this.path, err: error }, 'cannot read the shaping state file; duration expiries count from now');
      return;
    }
    try {
      const parsed = JSON.parse(text) as { appliedAt?: Record<string, unknown> };
      for (const [uid, at] of Object.entries(parsed.appliedAt ?? {})) {
        if (typeof at === 'string' && Number.isFinite(Date.parse(at))) this.times.set(uid, Date.parse(at));
      }
    } catch (error) {
      this.log.warn({ path: this.path, err: error }, 'the shaping state file is not valid JSON; duration expiries count from now');
    }
  }

  get(uid: string): Date | null {
    const at = this.times.get(uid);
    return at === undefined ? null : new Date(at);
  }

  set(uid: string, at: Date | null): void {
    const before = this.times.get(uid);
    if (at === null) {
      if (before === undefined) return;
      this.times.delete(uid);
    } else {
      if (before === at.getTime()) return;
      this.times.set(uid, at.getTime());
    }
    this.scheduleWrite();
  }

  /** Forgets every UID not in `live` (pods gone while the agent was down). */
  retain(live: ReadonlySet<string>): void {
    let changed = false;
    for (const uid of this.times.keys()) {
      if (!live.has(uid)) {
        this.times.delete(uid);
        changed = true;
      }
    }
    if (changed) this.scheduleWrite();
  }

  /** Resolves when every change so far is on disk (or failed and was logged). */
  flush(): Promise<void> {
    return this.writing;
  }

  private scheduleWrite(): void {
    if (!this.path || this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(() => this.write());
  }

  private async write(): Promise<void> {
    this.dirty = false;
    const path = this.path!;
    const body = JSON.stringify({ appliedAt: Object.fromEntries([...this.times].map(([uid, at]) => [uid, new Date(at).toISOString()])) });
    try {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.tmp`, body);
      await rename(`${path}.tmp`, path);
    } catch (error) {
      this.log.warn({ path, err: error }, 'cannot write the shaping state file; duration expiries restart if the agent does');
    }
  }
}
