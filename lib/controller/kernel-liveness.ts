// Liveness of the kernel side: every addon worker thread answers and is back in the process's own
// network namespace between jobs. A thread stuck in a kernel call, or left in a pod's namespace,
// would apply the next rules to the wrong place or never; restarting the container is the cure.
import { runtime } from '../kernel/index.js';
import type { Check } from './health-server.js';

export async function kernelWorkersLive(timeoutMs = 5000): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`kernel worker threads did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const where = await Promise.race([runtime.workerNamespaces(), timeout]);
    const stray = where.workers.flatMap((ns, i) => (ns === where.process ? [] : [`thread ${i} is in netns ${ns}`]));
    if (stray.length) return { ok: false, detail: `kernel worker threads outside the process's namespace ${where.process}: ${stray.join(', ')}` };
    return { ok: true, detail: `${where.workers.length} kernel worker threads in the process's namespace` };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  } finally {
    clearTimeout(timer);
  }
}
