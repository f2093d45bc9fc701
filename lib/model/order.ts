// The order in which a DesiredState's tables must be applied. Each table is committed on its own,
// so between two commits the kernel holds one table new and the other old. The only pair that
// cares is NOTRACK DNS: raw makes DNS packets untracked and filter's NODENET-DNS-ACCEPT lets
// untracked DNS packets through. Were raw ahead of filter, untracked DNS would meet a firewall
// that accepts only ESTABLISHED/RELATED and be dropped. So the ACCEPTs go in before the NOTRACK
// rules (filter, then raw) and come out after them (raw, then filter).
//
// The previous state is not needed to decide: NODENET-DNS-ACCEPT's content is the same whenever
// the fix is on, so if the next state has it, applying filter first only ever adds or keeps it;
// if the next state lacks it, the fix is off (or refused), raw loses every NOTRACK rule, and raw
// goes first. That also holds after a restart, when what the kernel held before is unknown.
import type { TableState } from '../kernel/netfilter/index.js';

import { CHAINS } from './chains.js';
import type { DesiredState } from './types.js';

/** Whether this state keeps the ACCEPT rules untracked DNS needs (then filter goes before raw). */
export function keepsDnsAccept(state: DesiredState, family: TableState['family']): boolean {
  return state.tables.some((t) => t.family === family && t.table === 'filter' && t.chains.some((c) => c.name === CHAINS.dnsAccept));
}

/**
 * The tables of `next` in the order to apply them, one netfilter.apply each, stopping at the first
 * failure (the next reconcile starts over from the whole state): per family, filter before raw
 * while NOTRACK DNS is on, raw before filter when it is off; nat, which neither depends on, last.
 */
export function applyOrder(next: DesiredState): TableState[] {
  const families = [...new Set(next.tables.map((t) => t.family))];
  const out: TableState[] = [];
  for (const family of families) {
    const rank = keepsDnsAccept(next, family) ? ['filter', 'raw'] : ['raw', 'filter'];
    const position = (t: TableState) => {
      const i = rank.indexOf(t.table);
      return i === -1 ? rank.length : i;
    };
    const own = next.tables.filter((t) => t.family === family);
    out.push(...own.map((t, i) => ({ t, i })).sort((x, y) => position(x.t) - position(y.t) || x.i - y.i).map((x) => x.t));
  }
  return out;
}
