// Pod cgroups on the real kernel, for the kernel tests that drive the pod → netns resolver's /proc
// fallback with real processes: a cgroup root of the test's own, cgroups named like a kubelet pod's
// under it, and sleepers put in them.
//
// Everything lives under <cgroup mount>/nodenet-test-<pid>: its processes are killed and its
// cgroups removed in teardown, pass or fail. A run that was killed leaves a directory whose pid is
// gone; the next run removes it first. Nothing outside that directory is touched.
//
//   const { base } = await testCgroupRoot(t);
//   const cgroup = podSandboxCgroup(base, uid);
//   await mkdir(cgroup, { recursive: true });
//   await joinCgroup(cgroup, startSleeper(t, ns).pid!);
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { TestNetns } from './netns.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface CgroupMount {
  path: string;
  version: 1 | 2;
}

const PREFIX = 'nodenet-test-';

// A v2 hierarchy if the machine has one (pure v2 at /sys/fs/cgroup, or hybrid's "unified"), else
// systemd's named v1 hierarchy, else any v1 hierarchy: in each, every process has a path, and the
// resolver reads whichever line names a pod.
async function cgroupMount(): Promise<CgroupMount> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').flatMap((line) => {
    const [before, after] = line.split(' - ');
    if (!before || !after) return [];
    const [fstype, , superOptions = ''] = after.split(' ');
    const fields = before.split(' ');
    const root = fields[3];
    const path = fields[4];
    if (root !== '/' || path === undefined) return [];
    return fstype === 'cgroup2' || fstype === 'cgroup' ? [{ fstype, path, superOptions }] : [];
  });
  const v2 = mounts.find((m) => m.fstype === 'cgroup2');
  if (v2) return { path: v2.path, version: 2 };
  const v1 = mounts.find((m) => m.superOptions.split(',').includes('name=systemd')) ?? mounts.find((m) => m.fstype === 'cgroup');
  if (v1) return { path: v1.path, version: 1 };
  throw new Error('no cgroup filesystem is mounted with its root at a mount point (/proc/self/mountinfo): cannot make a pod cgroup');
}

/** Every cgroup directory under dir, children before their parent (rmdir needs them gone first). */
async function cgroupTree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const below = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => cgroupTree(join(dir, e.name))));
  return [...below.flat(), dir];
}

async function pidsIn(cgroup: string): Promise<number[]> {
  const text = await readFile(join(cgroup, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number);
}

export function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** Polls: the kernel moves processes and tears namespaces down asynchronously. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Kills whatever is still in the tree (only our processes are ever put there) and removes it. */
async function removeCgroupTree(base: string): Promise<void> {
  if (!existsSync(base)) return;
  const dirs = await cgroupTree(base);
  for (const dir of dirs) {
    for (const pid of await pidsIn(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // A cgroup with a process in it, even a dying one, cannot be removed.
  await until(`the processes in ${base} to exit`, async () => (await Promise.all(dirs.map(pidsIn))).every((p) => p.length === 0));
  for (const dir of dirs) await rmdir(dir);
}

async function sweepStale(mount: string): Promise<void> {
  for (const name of await readdir(mount)) {
    const m = new RegExp(`^${PREFIX}(\\d+)$`).exec(name);
    if (m && !alive(Number(m[1]))) await removeCgroupTree(join(mount, name));
  }
}

/** This run's cgroup root, created now; an error says exactly why cgroups cannot be made here. */
export async function testCgroupRoot(t: Teardown): Promise<{ base: string; mount: CgroupMount }> {
  const mount = await cgroupMount();
  await sweepStale(mount.path);
  const base = join(mount.path, `${PREFIX}${process.pid}`);
  t.teardown(() => removeCgroupTree(base));
  try {
    await mkdir(base);
  } catch (error) {
    throw new Error(`cannot create a cgroup at ${base} (cgroup v${mount.version}): ${(error as Error).message}`, { cause: error });
  }
  return { base, mount };
}

/** A pod sandbox's cgroup path under base in the systemd driver's shape, as containerd names the scope. */
export function podSandboxCgroup(base: string, uid: string, sandboxId = randomBytes(32).toString('hex')): string {
  return join(base, 'kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${uid.replaceAll('-', '_')}.slice`, `cri-containerd-${sandboxId}.scope`);
}

export async function joinCgroup(cgroup: string, pid: number): Promise<void> {
  await writeFile(join(cgroup, 'cgroup.procs'), `${pid}\n`);
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts a long sleep (inside `ns` if given; ip netns exec execs it, so the pid is the sleep's),
 * killed and reaped in teardown. With `script`, `sh -c script` instead, its stdin a pipe.
 */
export function startSleeper(t: Teardown, ns: TestNetns | null, script?: string): ChildProcess {
  const inner = script === undefined ? ['sleep', '600'] : ['sh', '-c', script];
  const [cmd, ...args] = ns === null ? inner : ['ip', 'netns', 'exec', ns.name, ...inner];
  const child = spawn(cmd!, args, { stdio: [script === undefined ? 'ignore' : 'pipe', 'ignore', 'ignore'] });
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited(child);
  });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  return child;
}
