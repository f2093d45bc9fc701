// Finding a pod's network namespace without a container runtime client and without exec.
//
// Two pieces for issue 6's resolver:
// - findNetnsFile: which runtime netns file (containerd's and CRI-O's /var/run/netns/<name>,
//   bind mounts of nsfs) is a given namespace, matched on device and inode. The primary path
//   (pod IP → host veth → peer's link-netnsid) uses it to name the namespace it found.
// - findPodNetns: the fallback. Every process of the pod sits in the pod's cgroup, and the kubelet
//   names that cgroup after the pod UID (cgroup-path.ts), so a scan of /proc/*/cgroup finds the
//   pod's processes and /proc/<pid>/ns/net their namespace. Needs the host's PID namespace view of
//   /proc (hostPID, or the host's /proc mounted at procRoot).
//
// PIDs are reused: between reading a pid's cgroup and opening its namespace the process may have
// exited and its pid gone to another pod's process. So the namespace is opened first and the pid
// checked again afterwards — same pod cgroup, same start time (the start time tells two processes
// with the same pid apart) — and only then is the open namespace trusted.
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';

import { normalisePodUid, parsePodCgroup, type PodCgroup } from './cgroup-path.js';

/** A network namespace's identity: nsfs device and inode, as fstat of a namespace fd gives. */
export interface NetnsId {
  dev: number;
  ino: number;
}

/** An open namespace file; `/proc/self/fd/<fd>` names it for as long as it stays open. */
export interface NetnsHandle {
  readonly fd: number;
  stat(): Promise<NetnsId>;
  close(): Promise<void>;
}

/** The few filesystem calls the resolver makes; tests substitute them to stage races. */
export interface ResolverFs {
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<string>;
  stat(path: string): Promise<NetnsId>;
  open(path: string): Promise<NetnsHandle>;
}

export const nodeFs: ResolverFs = {
  readdir: (path) => fsp.readdir(path),
  readFile: (path) => fsp.readFile(path, 'utf8'),
  stat: (path) => fsp.stat(path),
  open: (path) => fsp.open(path, 'r'),
};

export const DEFAULT_NETNS_DIRS = ['/var/run/netns'];
const DEFAULT_CONCURRENCY = 32;

export interface FindNetnsFileOptions {
  /** Directories holding the runtime's namespace files; searched in order. */
  dirs?: string[];
  concurrency?: number;
  fs?: ResolverFs;
}

/**
 * The file under `dirs` that is the namespace `target`, or null. The device is compared as well as
 * the inode: a name whose bind mount is gone is an empty file on the directory's own filesystem,
 * and its inode number may equal some namespace's.
 */
export async function findNetnsFile(target: NetnsId, options: FindNetnsFileOptions = {}): Promise<string | null> {
  const fs = options.fs ?? nodeFs;
  for (const dir of options.dirs ?? DEFAULT_NETNS_DIRS) {
    let names: string[];
    try {
      names = (await fs.readdir(dir)).sort();
    } catch (error) {
      if (isGone(error) || isDenied(error)) continue;
      throw error;
    }
    const hits: string[] = [];
    await forEachLimited(names, options.concurrency ?? DEFAULT_CONCURRENCY, async (name) => {
      const path = join(dir, name);
      try {
        const st = await fs.stat(path);
        if (st.dev === target.dev && st.ino === target.ino) hits.push(path);
      } catch (error) {
        // Removed while listing, or a name we may not stat: neither is the namespace we can use.
        if (!isGone(error) && !isDenied(error)) throw error;
      }
    });
    if (hits.length > 0) return hits.sort()[0]!;
  }
  return null;
}

export interface FindPodNetnsOptions {
  /** Where the host's procfs is mounted: /proc with hostPID, else wherever it was mounted. */
  procRoot?: string;
  /**
   * The host's network namespace, to tell a hostNetwork pod apart. Default: that of pid 1 under
   * procRoot, else procRoot's self (readable even where pid 1's is not, e.g. inside a user
   * namespace; right when the agent itself runs with hostNetwork).
   */
  hostNetns?: NetnsId;
  concurrency?: number;
  /**
   * Return the chosen namespace still open (`handle`): `/proc/self/fd/<fd>` then names it with no
   * pid involved. The caller closes it.
   */
  keepOpen?: boolean;
  fs?: ResolverFs;
}

interface Skipped {
  /** Processes that exited (or changed pod) while being looked at. */
  raced: number;
  /** Processes whose files could not be read (EACCES, EPERM). */
  denied: number;
  /** Processes skipped for any other error; the first such error's message is `error`. */
  failed: number;
  error?: string;
}

export interface PodNetnsFound extends Skipped {
  kind: 'found';
  pid: number;
  netnsInode: number;
  netnsDev: number;
  /** `<procRoot>/<pid>/ns/net`: valid while that process lives. */
  path: string;
  /** How the process was chosen: the pod's pause (sandbox) process, else its oldest process. */
  via: 'pause' | 'oldest';
  containerId: string | null;
  /** Pod processes checked (open namespace, cgroup and start time confirmed). */
  processes: number;
  /**
   * Distinct non-host namespaces among them; more than one means some process of the pod made a
   * namespace of its own.
   */
  namespaces: number;
  handle?: NetnsHandle;
}

export interface PodNetnsHostNetwork extends Skipped {
  kind: 'host-network';
  pid: number;
  netnsInode: number;
  netnsDev: number;
  path: string;
  via: 'pause' | 'oldest';
  processes: number;
}

export interface PodNetnsNotFound extends Skipped {
  kind: 'not-found';
  /** Processes listed under procRoot. */
  scanned: number;
  /** Of them, in the pod's cgroup on the first read (CRI-O's conmon and dying ones excluded). */
  matched: number;
}

export type PodNetnsResult = PodNetnsFound | PodNetnsHostNetwork | PodNetnsNotFound;

interface Checked {
  pid: number;
  netns: NetnsId;
  comm: string;
  startTime: number;
  containerId: string | null;
  handle: NetnsHandle | null;
}

interface ProcStat {
  comm: string;
  state: string;
  startTime: number;
}

/**
 * The network namespace of the pod with this UID (dashed, underscored or a static pod's hash),
 * found through its processes' cgroups. The pod's pause process decides when there is one (the
 * sandbox holds the pod's namespace by definition); otherwise its oldest process, which is a
 * container's first process and so in the pod's namespace unless it left it itself.
 */
export async function findPodNetns(podUid: string, options: FindPodNetnsOptions = {}): Promise<PodNetnsResult> {
  const uid = normalisePodUid(podUid);
  if (uid === null) throw new TypeError(`not a pod UID: ${JSON.stringify(podUid)}`);
  const fs = options.fs ?? nodeFs;
  const procRoot = options.procRoot ?? '/proc';
  const host = options.hostNetns ?? (await hostNetns(fs, procRoot));
  const needles = uidSpellings(uid);

  const pids = (await fs.readdir(procRoot)).filter((name) => /^[1-9]\d*$/.test(name));
  const skipped: Skipped = { raced: 0, denied: 0, failed: 0 };
  // One odd process must not hide the pod from the scan: every error is counted, none thrown.
  const count = (error: unknown): void => {
    if (isGone(error)) skipped.raced++;
    else if (isDenied(error)) skipped.denied++;
    else {
      skipped.failed++;
      skipped.error ??= error instanceof Error ? error.message : String(error);
    }
  };

  let matched = 0;
  const checked: Checked[] = [];
  await forEachLimited(pids, options.concurrency ?? DEFAULT_CONCURRENCY, async (name) => {
    const dir = join(procRoot, name);
    let handle: NetnsHandle | null = null;
    try {
      const first = await readPodCgroup(fs, dir, needles, uid);
      if (first === null || first.conmon || first.deleted) return;
      matched++;
      const before = parseStat(await fs.readFile(join(dir, 'stat')));
      if (before === null || isDead(before)) return void skipped.raced++;
      handle = await fs.open(join(dir, 'ns', 'net'));
      const netns = await handle.stat();
      // The namespace is open; now make sure it was this pod's process we opened it through.
      const again = await readPodCgroup(fs, dir, needles, uid);
      const after = parseStat(await fs.readFile(join(dir, 'stat')));
      if (again === null || again.deleted || after === null || isDead(after) || after.startTime !== before.startTime) {
        return void skipped.raced++;
      }
      checked.push({ pid: Number(name), netns, comm: after.comm, startTime: after.startTime, containerId: again.containerId, handle: options.keepOpen ? handle : null });
      if (options.keepOpen) handle = null;
    } catch (error) {
      count(error);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  });

  const chosen = choose(checked);
  await Promise.all(checked.filter((c) => c !== chosen?.process).map((c) => c.handle?.close().catch(() => undefined)));
  if (!chosen) return { kind: 'not-found', scanned: pids.length, matched, ...skipped };

  const { process: p, via } = chosen;
  const common = {
    pid: p.pid,
    netnsInode: p.netns.ino,
    netnsDev: p.netns.dev,
    path: join(procRoot, String(p.pid), 'ns', 'net'),
    via,
    processes: checked.length,
    ...skipped,
  };
  if (sameNetns(p.netns, host)) {
    await p.handle?.close().catch(() => undefined);
    return { kind: 'host-network', ...common };
  }
  const namespaces = new Set(checked.filter((c) => !sameNetns(c.netns, host)).map((c) => `${c.netns.dev}:${c.netns.ino}`)).size;
  return {
    kind: 'found',
    ...common,
    containerId: p.containerId,
    namespaces,
    ...(p.handle ? { handle: p.handle } : {}),
  };
}

function choose(checked: Checked[]): { process: Checked; via: 'pause' | 'oldest' } | null {
  const byAge = [...checked].sort((a, b) => a.startTime - b.startTime || a.pid - b.pid);
  // An app process may call itself anything, but one named pause inside this pod's cgroup is
  // at worst another process of the same pod; the image's pause binary shows as comm "pause".
  const pause = byAge.find((c) => c.comm === 'pause');
  if (pause) return { process: pause, via: 'pause' };
  const oldest = byAge[0];
  return oldest ? { process: oldest, via: 'oldest' } : null;
}

async function readPodCgroup(fs: ResolverFs, dir: string, needles: string[], uid: string): Promise<PodCgroup | null> {
  const content = await fs.readFile(join(dir, 'cgroup'));
  // Most processes are not the pod's: a substring test spares them the parse.
  if (!needles.some((n) => content.includes(n))) return null;
  const parsed = parsePodCgroup(content);
  return parsed?.podUid === uid ? parsed : null;
}

function uidSpellings(uid: string): string[] {
  return uid.includes('-') ? [uid, uid.replaceAll('-', '_')] : [uid];
}

/** Fields of /proc/<pid>/stat; null when the content is not one. */
export function parseStat(content: string): ProcStat | null {
  // comm may hold spaces and parentheses: it runs from the first '(' to the last ')'.
  const open = content.indexOf('(');
  const close = content.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const rest = content.slice(close + 2).trim().split(/\s+/);
  // After comm: state is field 3 and starttime field 22 of proc(5), so indexes 0 and 19 here.
  const state = rest[0];
  const startTime = Number(rest[19]);
  if (state === undefined || !Number.isSafeInteger(startTime)) return null;
  return { comm: content.slice(open + 1, close), state, startTime };
}

// A zombie keeps its pid and cgroup line but has already dropped its namespaces.
function isDead(stat: ProcStat): boolean {
  return stat.state === 'Z' || stat.state === 'X' || stat.state === 'x';
}

async function hostNetns(fs: ResolverFs, procRoot: string): Promise<NetnsId> {
  const tried: string[] = [];
  for (const who of ['1', 'self']) {
    const path = join(procRoot, who, 'ns', 'net');
    try {
      const st = await fs.stat(path);
      return { dev: st.dev, ino: st.ino };
    } catch (error) {
      tried.push(`${path}: ${(error as Error).message}`);
    }
  }
  throw new Error(`cannot tell the host's network namespace (pass hostNetns): ${tried.join('; ')}`);
}

function sameNetns(a: NetnsId, b: NetnsId): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : undefined;
}

// ESRCH: a /proc/<pid> file of a process that exits mid-read; ENOENT: its directory is gone.
function isGone(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR';
}

function isDenied(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'EACCES' || code === 'EPERM';
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
