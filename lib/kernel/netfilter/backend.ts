// The seam between what nodenet wants in a table and how it gets there. Every backend takes the
// same TableState (nodenet's chains and the jumps into them) and keeps the same promises: one atomic
// change per table, nothing when nothing differs, nothing touched that nodenet does not own.
import { apply, diff, type ApplyOptions, type ApplyResult } from './apply.js';
import type { TableState } from './spec.js';

export { nftBackend } from './nft/backend.js';

export interface NetfilterBackend {
  readonly name: 'iptables-legacy' | 'nftables';
  /** Makes nodenet's part of one table what `state` says. */
  apply(state: TableState, options?: ApplyOptions): Promise<ApplyResult>;
  /** What apply would change, changing nothing. */
  diff(state: TableState, options?: ApplyOptions): Promise<ApplyResult>;
}

/** Legacy iptables through libiptc, under the xtables lock. */
export const legacyBackend: NetfilterBackend = { name: 'iptables-legacy', apply, diff };
