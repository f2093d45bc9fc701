// The pure model: what the cluster declares plus what the agent observed on the node, turned into
// the complete netfilter state nodenet wants on this node. No I/O; the same input always gives the
// same output (every list is sorted), so an unchanged world diffs to nothing and commits nothing.
import type { TableState } from '../kernel/netfilter/index.js';

import { type ManagedTable, type Part, TABLES } from './chains.js';
import { renderDropInvalid } from './drop-invalid.js';
import { ExternalClusterMemo, renderExternalCluster } from './external-cluster.js';
import { compareServices, familiesOf } from './families.js';
import { renderNotrackDns } from './notrack-dns.js';
import type { DesiredState, Finding, ModelInput } from './types.js';
import type { IpFamily, RuleSpec } from '../kernel/netfilter/index.js';

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
 * A fresh ModelRenderer's render: use one ModelRenderer across renders to reuse unchanged work.
 */
export function render(input: ModelInput): DesiredState {
  return new ModelRenderer().render(input);
}

/**
 * `render`, remembering what it rendered: a Service whose ServiceInput object (by identity) and
 * node-wide inputs are unchanged is not rendered again, and every rule that did not change is the
 * same RuleSpec object as in the last render, so the kernel layer's caches keyed by RuleSpec hit.
 * The output equals `render(input)`'s for every input. A ServiceInput must not be changed in place
 * once rendered: a changed Service is a new object (as the informers deliver it).
 */
export class ModelRenderer {
  private readonly external = new ExternalClusterMemo();
  /** The last render's rules outside the per-Service chains, by family, table, chain and content. */
  private interned = new Map<string, RuleSpec>();

  render(input: ModelInput): DesiredState {
    const families = familiesOf(input.config);
    const services = [...input.services].sort(compareServices);
    // Fix order is jump order within a builtin chain: drop-INVALID's jump is the first in INPUT.
    const external = renderExternalCluster(input, families, services, this.external);
    const results = [renderDropInvalid(input, families), external, renderNotrackDns(input, families, services)];

    // The few rules not rendered per Service (drop-INVALID, the DNS rules, the jumps) are built
    // afresh each time; swapping each for the last render's equal object gives them a stable
    // identity too. Never across families or tables: one RuleSpec encodes differently per family.
    const next = new Map<string, RuleSpec>();
    const intern = (p: Part, chain: string, rule: RuleSpec): RuleSpec => {
      const content = `${p.family} ${p.table} ${chain} ${JSON.stringify(rule)}`;
      let key = content;
      // Equal rules in one chain stay distinct objects, as they were built.
      for (let n = 1; next.has(key); n++) key = `${content} #${n}`;
      const kept = this.interned.get(key) ?? rule;
      next.set(key, kept);
      return kept;
    };
    const parts: Part[] = results.flatMap((r) =>
      r.parts.map((p) => ({
        ...p,
        // The external chains' rules are already the memoized per-Service ones.
        chains: r === external ? p.chains : p.chains.map((c) => ({ name: c.name, rules: c.rules.map((rule) => intern(p, c.name, rule)) })),
        jumps: p.jumps.map((j) => ({ chain: j.chain, rule: intern(p, j.chain, j.rule) })),
      })),
    );
    this.interned = next;

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
}

const FIX_ORDER: readonly Finding['fix'][] = ['config', 'drop-invalid', 'external-cluster', 'notrack-dns'];

// Findings come out in the order the inputs were walked; sorting makes them as independent of the
// input's order as the rules are (node-wide findings first, then by Service).
function sortFindings(findings: Finding[]): Finding[] {
  const text = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  // Sort keys computed once per finding, not once per comparison.
  return findings
    .map((f, i) => ({ f, i, fix: FIX_ORDER.indexOf(f.fix), key: f.service ? `1 ${f.service.namespace}/${f.service.name}` : '0' }))
    .sort((x, y) => x.fix - y.fix || text(x.key, y.key) || text(x.f.message, y.f.message) || x.i - y.i)
    .map((x) => x.f);
}
