// Facts about the addon itself.
import { statSync } from 'node:fs';

import { kernelCall } from './errors.js';
import { native, nativePath, type RawVersions } from './native.js';

export interface Versions extends RawVersions {
  /** Where the addon binary was loaded from. */
  path: string;
}

/** Versions of the addon and of the libnl/libiptc/libnftnl/libmnl it was built against and runs with. */
export function versions(): Versions {
  return { ...native().versions(), path: nativePath() };
}

export interface WorkerNamespaces {
  /** Inode of the process's own network namespace. */
  process: number;
  /** Inode of the namespace each kernel worker thread is in between jobs. */
  workers: number[];
}

/**
 * Where the addon's kernel threads are. Between jobs every worker must be back in the process's own
 * namespace; a health check can assert `workers.every((w) => w === process)`.
 */
export async function workerNamespaces(): Promise<WorkerNamespaces> {
  const addon = native();
  const count = addon.workerThreads();
  const workers = await Promise.all(Array.from({ length: count }, (_, i) => kernelCall(addon.threadNetns(i))));
  return { process: statSync('/proc/self/ns/net').ino, workers };
}

export interface HeldLock {
  /** Releases the lock (also released when the process exits, however it exits). */
  release(): void;
}

/**
 * Takes an exclusive lock on a file, without waiting: the agent holds /run/nodenet.lock so that
 * only one nodenet writes a node's kernel state. Rejects with KernelError code EAGAIN (and
 * the holder's pid in the message) when another process has it.
 */
export async function lockFile(path: string): Promise<HeldLock> {
  const addon = native();
  const id = await kernelCall(addon.acquireLock(path));
  return { release: () => void addon.releaseLock(id) };
}
