// Picking the netfilter backend at startup: detected (or forced by BACKEND), reported in the log and
// as a metric, and what nodenet left in the other backend removed, so a node that changed worlds
// does not keep running a stale copy of nodenet's rules that nothing updates any more.
import type { Logger } from 'pino';

import { netfilter } from '../../kernel/index.js';
import { detectBackend, type BackendChoice, type BackendName, type BackendSetting } from '../../kernel/netfilter/detect.js';
import { removeOtherBackend } from '../../kernel/netfilter/migrate.js';
import type { NetfilterBackend } from '../../kernel/netfilter/index.js';
import type { NodeFixesMetrics } from './metrics.js';

export function backendFor(name: BackendName): NetfilterBackend {
  return name === 'nftables' ? netfilter.nftBackend : netfilter.legacyBackend;
}

export interface ChosenBackend {
  choice: BackendChoice;
  backend: NetfilterBackend;
  /** What was removed from the other backend (one line each). */
  removed: string[];
}

/** Detects, reports and migrates. Rejects (the agent does not start) when the kernel cannot be read. */
export async function chooseBackend(options: { setting: BackendSetting; netns?: string; log: Logger; metrics: NodeFixesMetrics }): Promise<ChosenBackend> {
  const where = options.netns === undefined ? {} : { netns: options.netns };
  const choice = await detectBackend({ setting: options.setting, ...where });
  options.log.info({ backend: choice.backend, forced: choice.forced, reason: choice.reason, evidence: choice.evidence }, `netfilter backend: ${choice.backend} (${choice.reason})`);
  options.metrics.backend.reset();
  options.metrics.backend.set({ backend: choice.backend, forced: String(choice.forced) }, 1);
  const removed = await removeOtherBackend(choice.backend, where);
  if (removed.length) options.log.info({ removed }, `removed nodenet's rules from the backend it no longer uses (${choice.backend === 'nftables' ? 'iptables-legacy' : 'nftables'})`);
  return { choice, backend: backendFor(choice.backend), removed };
}
