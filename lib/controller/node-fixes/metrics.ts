// The node fixes' metrics, per feature and per table, never per rule or Service.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import { kernelCall } from '../../kernel/errors.js';
import { NFT_TABLE, type BackendName } from '../../kernel/netfilter/detect.js';
import { OWNED_PREFIX } from '../../kernel/netfilter/index.js';
import { segmentParent } from '../../kernel/netfilter/nft/layout.js';
import { native } from '../../kernel/native.js';
import type { IpFamily, TableState } from '../../kernel/netfilter/index.js';
import { CHAINS } from '../../model/index.js';

export type Feature = 'drop-invalid' | 'external-cluster' | 'notrack-dns';

const FEATURE_OF_CHAIN: ReadonlyMap<string, Feature> = new Map([
  [CHAINS.dropInvalid, 'drop-invalid'],
  [CHAINS.externalPods, 'external-cluster'],
  [CHAINS.externalHost, 'external-cluster'],
  [CHAINS.dnsAccept, 'notrack-dns'],
  [CHAINS.dnsNotrack, 'notrack-dns'],
]);

export function featureOfChain(chain: string): Feature | undefined {
  return FEATURE_OF_CHAIN.get(chain);
}

const NF_DROP = 0;

const LOCK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class NodeFixesMetrics {
  readonly rules: Gauge<'feature' | 'family'>;
  readonly lockWait: Histogram<'family' | 'table'>;
  readonly lockHold: Histogram<'family' | 'table'>;
  readonly commits: Counter<'family' | 'table'>;
  readonly changes: Counter<'family' | 'table'>;
  readonly conntrackDeleted: Counter<'family'>;
  readonly findings: Gauge<'fix' | 'reason' | 'severity'>;
  readonly proxyMode: Gauge<'mode'>;
  readonly services: Gauge;
  readonly backend: Gauge<'backend' | 'forced'>;

  constructor(registry: Registry, matched: () => Promise<MatchedCounters>) {
    const registers = [registry];
    this.rules = new Gauge({ name: 'nodenet_rules', help: "Rules in nodenet's chains after the last apply.", labelNames: ['feature', 'family'], registers });
    this.lockWait = new Histogram({
      name: 'nodenet_xtables_lock_wait_seconds',
      help: 'Time spent waiting for the xtables lock per table apply (other writers held it).',
      labelNames: ['family', 'table'],
      buckets: LOCK_BUCKETS,
      registers,
    });
    this.lockHold = new Histogram({
      name: 'nodenet_xtables_lock_hold_seconds',
      help: 'Time nodenet held the xtables lock per table apply (other writers waited at most this).',
      labelNames: ['family', 'table'],
      buckets: LOCK_BUCKETS,
      registers,
    });
    this.commits = new Counter({ name: 'nodenet_netfilter_commits_total', help: 'Table commits (none when a table already was as desired).', labelNames: ['family', 'table'], registers });
    this.changes = new Counter({ name: 'nodenet_netfilter_changes_total', help: 'Chain and jump edits committed.', labelNames: ['family', 'table'], registers });
    this.conntrackDeleted = new Counter({
      name: 'nodenet_conntrack_flows_deleted_total',
      help: 'Stale UDP conntrack flows deleted after a DNAT appeared, changed or went.',
      labelNames: ['family'],
      registers,
    });
    this.findings = new Gauge({ name: 'nodenet_findings', help: 'What the last reconcile refused or noticed, by fix and reason.', labelNames: ['fix', 'reason', 'severity'], registers });
    this.proxyMode = new Gauge({ name: 'nodenet_proxy_mode', help: 'The kube-proxy mode the last reconcile worked with (1 for that mode).', labelNames: ['mode'], registers });
    this.backend = new Gauge({
      name: 'nodenet_netfilter_backend',
      help: 'The netfilter backend nodenet writes through (1 for it); forced when BACKEND set it rather than detection.',
      labelNames: ['backend', 'forced'],
      registers,
    });
    this.services = new Gauge({ name: 'nodenet_services', help: 'Services the last reconcile rendered from (held ones included).', registers });
    const collectMatched = (pick: (c: MatchedCounter) => bigint) =>
      async function collect(this: Counter<'feature' | 'family'>) {
        const counters = await matched();
        this.reset();
        for (const c of counters) this.inc({ feature: c.feature, family: c.family }, Number(pick(c)));
      };
    new Counter({
      name: 'nodenet_matched_packets_total',
      help: "Packets nodenet's rules acted on (DROP, DNAT, CT --notrack), from the kernel's rule counters.",
      labelNames: ['feature', 'family'],
      registers,
      collect: collectMatched((c) => c.packets),
    });
    new Counter({
      name: 'nodenet_matched_bytes_total',
      help: "Bytes of the packets nodenet's rules acted on, from the kernel's rule counters.",
      labelNames: ['feature', 'family'],
      registers,
      collect: collectMatched((c) => c.bytes),
    });
  }

  /** Sets the rules gauge from the tables just applied. */
  countRules(tables: readonly TableState[]): void {
    const counts = new Map<string, number>();
    for (const t of tables) {
      for (const chain of t.chains) {
        const feature = featureOfChain(chain.name);
        if (feature) counts.set(`${feature} ${t.family}`, (counts.get(`${feature} ${t.family}`) ?? 0) + chain.rules.length);
      }
    }
    this.rules.reset();
    for (const feature of new Set(FEATURE_OF_CHAIN.values())) {
      for (const family of new Set(tables.map((t) => t.family))) this.rules.set({ feature, family }, counts.get(`${feature} ${family}`) ?? 0);
    }
  }
}

export interface MatchedCounter {
  feature: Feature;
  family: IpFamily;
  packets: bigint;
  bytes: bigint;
}
export type MatchedCounters = MatchedCounter[];

/** What counts as acting, per backend: DROP, DNAT and CT (--notrack) targets; nat, notrack and drop expressions. */
const LEGACY_ACTING_TARGETS = ['DROP', 'DNAT', 'CT'];
const NFT_ACTING = { actingExprs: ['nat', 'notrack'], actingVerdicts: [NF_DROP] };

/**
 * Packets and bytes per feature, summed over the rules in nodenet's chains whose target acts on a
 * packet (DROP, DNAT, CT): a DNATed packet also passes its MARK rule, and untracked DNS its ACCEPT,
 * so counting every rule would count one packet twice. The addon sums the counters per chain (a
 * scrape must not decode tens of thousands of rules on the event loop); a missing table adds nothing.
 */
export async function readMatchedCounters(families: readonly IpFamily[], netns: string | undefined, backend: BackendName = 'iptables-legacy'): Promise<MatchedCounters> {
  if (backend === 'nftables') return readNftCounters(families, netns);
  const totals = new Map<string, MatchedCounter>();
  for (const family of families) {
    for (const table of ['filter', 'nat', 'raw']) {
      const sums = await kernelCall(native().tableCounterSums(family === 'ipv4' ? 4 : 6, table, OWNED_PREFIX, LEGACY_ACTING_TARGETS, netns));
      for (const sum of sums) addSum(totals, featureOfChain(sum.chain), family, sum);
    }
  }
  return [...totals.values()];
}

const NFPROTO: Record<IpFamily, number> = { ipv4: 2, ipv6: 10 };

/**
 * The same for the nftables backend: nodenet's table holds its chains as `<table>-NODENET-*`; a
 * rule acts when it drops, NATs or untracks, and its counter expression holds what it matched.
 */
async function readNftCounters(families: readonly IpFamily[], netns: string | undefined): Promise<MatchedCounters> {
  const totals = new Map<string, MatchedCounter>();
  for (const family of families) {
    const dump = await kernelCall(native().nftDump({ family: NFPROTO[family], table: NFT_TABLE, counterSums: NFT_ACTING }, netns));
    for (const sum of dump.sums ?? []) {
      // A long chain's rules are in its segments, which count for the chain.
      const chain = segmentParent(sum.chain) ?? sum.chain;
      const owned = chain.indexOf(OWNED_PREFIX);
      addSum(totals, owned > 0 ? featureOfChain(chain.slice(owned)) : undefined, family, sum);
    }
  }
  return [...totals.values()];
}

/** Adds one chain's sum to its feature's total; a feature's chains are listed even when nothing acted. */
function addSum(totals: Map<string, MatchedCounter>, feature: Feature | undefined, family: IpFamily, sum: { packets: bigint; bytes: bigint }): void {
  if (!feature) return;
  const key = `${feature} ${family}`;
  const total = totals.get(key) ?? { feature, family, packets: 0n, bytes: 0n };
  total.packets += sum.packets;
  total.bytes += sum.bytes;
  totals.set(key, total);
}
