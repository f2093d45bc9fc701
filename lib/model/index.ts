// The pure model: what the cluster declares plus what the agent observed on the node, turned into
// the complete netfilter state nodenet wants on this node. No I/O; the same input always gives the
// same output (every list is sorted), so an unchanged world diffs to nothing and commits nothing.
import type { TableState } from '../kernel/netfilter/index.js';

import { type ManagedTable, type Part, TABLES } from './chains.js';
import { renderDropInvalid } from './drop-invalid.js';
import { renderExternalCluster } from './external-cluster.js';
import { compareServices, familiesOf } from './families.js';
import { renderNotrackDns } from './notrack-dns.js';
import type { DesiredState, Finding, ModelInput } from './types.js';
import type { IpFamily } from '../kernel/netfilter/index.js';

const ALL_FAMILIES: readonly IpFamily[] = ['ipv4', 'ipv6'];

export type * from './types.js';
export { CHAINS, TABLES, type ManagedTable } from './chains.js';
export { parseFixesConfig, DEFAULT_DNS_SERVICE, type Env } from './config.js';
export { DEFAULT_MASQUERADE_BIT } from './external-cluster.js';
export { DNS_PORT } from './notrack-dns.js';
export { applyOrder, keepsDnsAccept } from './order.js';
export * as shaping from './shaping/index.js';

/**
 * One TableState per family (IPv4 first) and per table nodenet manages (filter, nat, raw), in that
 * order, each holding everything nodenet wants there — empty when no fix needs the table, and for a
 * family NET_STACK leaves out, so applying it removes what an earlier state left. Never throws:
 * what cannot be rendered becomes a finding. Apply the tables in `applyOrder(state)`'s order.
 */
export function render(input: ModelInput): DesiredState {
  const families = familiesOf(input.config);
  const services = [...input.services].sort(compareServices);
  // Fix order is jump order within a builtin chain: drop-INVALID's jump is the first in INPUT.
  const results = [renderDropInvalid(input, families), renderExternalCluster(input, families, services), renderNotrackDns(input, families, services)];
  const parts: Part[] = results.flatMap((r) => r.parts);

  const tables: TableState[] = [];
  // Every family, configured or not: NET_STACK losing a family must take that family's rules away.
  for (const family of ALL_FAMILIES) {
    for (const table of TABLES) {
      const mine = parts.filter((p) => p.family === family && p.table === (table as ManagedTable));
      tables.push({
        family,
        table,
        chains: mine.flatMap((p) => p.chains).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
        jumps: mine.flatMap((p) => p.jumps),
      });
    }
  }
  return { tables, findings: sortFindings(results.flatMap((r) => r.findings)) };
}

const FIX_ORDER: readonly Finding['fix'][] = ['config', 'drop-invalid', 'external-cluster', 'notrack-dns'];

// Findings come out in the order the inputs were walked; sorting makes them as independent of the
// input's order as the rules are (node-wide findings first, then by Service).
function sortFindings(findings: Finding[]): Finding[] {
  const key = (f: Finding) => (f.service ? `1 ${f.service.namespace}/${f.service.name}` : '0');
  const text = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return findings
    .map((f, i) => ({ f, i }))
    .sort((x, y) => FIX_ORDER.indexOf(x.f.fix) - FIX_ORDER.indexOf(y.f.fix) || text(key(x.f), key(y.f)) || text(x.f.message, y.f.message) || x.i - y.i)
    .map((x) => x.f);
}
