// Where nodenet's qdiscs are on a node: the node namespace's links, and the links of every runtime
// namespace file the node namespace has an id for. The kernel gives a namespace an id in another
// when a veth joins the two, so those are the pods of this node; namespaces of anything else under
// the same directory (another node's sandbox on a test machine, a namespace nobody linked) are not
// looked into.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { isKernelError, qdiscs, routes } from '../../kernel/index.js';
import { isOwned } from './qdisc-sync.js';

// The namespace or device went away while being read: nothing of it to find or remove.
export const GONE_CODES = new Set(['ENODEV', 'ENOENT', 'ESRCH']);

export interface OwnedQdisc {
  /** "node", or "nsid:N" for the pod namespace with id N in the node's. */
  space: string;
  /** The namespace file; absent for the node's own when it is the caller's. */
  netns?: string;
  device: string;
  ifindex: number;
  kind: string;
}

export interface FindOwnedOptions {
  /** The node's network namespace; the caller's own when absent. */
  netns?: string;
  netnsDirs: readonly string[];
}

/** Every root qdisc of nodenet's (handle 6e6e:) on the node and in its pods' namespaces. */
export async function findOwnedQdiscs(options: FindOwnedOptions): Promise<OwnedQdisc[]> {
  const at = options.netns === undefined ? {} : { netns: options.netns };
  const spaces: Array<{ space: string; netns?: string }> = [{ space: 'node', ...at }];
  for (const dir of options.netnsDirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      const id = await routes.netnsId(path, at).catch(() => null);
      if (id !== null) spaces.push({ space: `nsid:${id}`, netns: path });
    }
  }
  const found: OwnedQdisc[] = [];
  for (const { space, netns } of spaces) {
    let listed;
    try {
      listed = await qdiscs.list(netns === undefined ? {} : { netns });
    } catch (error) {
      if (isKernelError(error) && GONE_CODES.has(error.code)) continue;
      throw error;
    }
    for (const q of listed) {
      if (q.parent === 'root' && isOwned(q)) found.push({ space, ...(netns === undefined ? {} : { netns }), device: q.device, ifindex: q.ifindex, kind: q.kind });
    }
  }
  return found;
}

/** Removes one (the kernel's default root comes back); false when it was already gone. */
export async function removeOwnedQdisc(q: OwnedQdisc): Promise<boolean> {
  try {
    await qdiscs.remove({ ...(q.netns === undefined ? {} : { netns: q.netns }), device: q.device, parent: 'root' });
    return true;
  } catch (error) {
    if (isKernelError(error) && GONE_CODES.has(error.code)) return false;
    throw error;
  }
}
