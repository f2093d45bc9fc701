// One nodenet writer per node: two agents (a rollout gone wrong, a manual run next to the
// DaemonSet) would undo each other's chains on every resync.
import { isKernelError, runtime } from '../kernel/index.js';

export const DEFAULT_NODE_LOCK = '/run/nodenet.lock';

export class NodeLockBusyError extends Error {
  override readonly name = 'NodeLockBusyError';
}

/** Takes the node lock without waiting; NodeLockBusyError when another process holds it. */
export async function acquireNodeLock(path: string): Promise<runtime.HeldLock> {
  try {
    return await runtime.lockFile(path);
  } catch (error) {
    if (isKernelError(error) && error.code === 'EAGAIN') {
      throw new NodeLockBusyError(`another nodenet agent already runs on this node: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
