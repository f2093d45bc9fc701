// Switching backend: whatever nodenet left in the backend it no longer uses must go, or a node that
// moved from legacy iptables to nf_tables (a distribution upgrade, a kube-proxy mode change) would
// run both sets of rules, the stale one never updated again. Only nodenet's own things are removed:
// its NODENET-* chains and the jumps into them in legacy tables, its `nodenet` tables in nf_tables.
import { isKernelError, kernelCall } from '../errors.js';
import type { NetnsOption } from '../links.js';
import { native } from '../native.js';
import { apply } from './apply.js';
import { NFT_TABLE, type BackendName } from './detect.js';
import type { IpFamily } from './types.js';

const FAMILIES: IpFamily[] = ['ipv4', 'ipv6'];
const NFT_FAMILIES: Array<{ nfproto: number; name: string }> = [
  { nfproto: 2, name: 'ip' },
  { nfproto: 10, name: 'ip6' },
  { nfproto: 1, name: 'inet' },
];
// Removal order for legacy tables: raw's NOTRACK rules go before filter's ACCEPTs for untracked
// DNS, as lib/model/order.ts explains; the rest do not depend on each other.
const LEGACY_ORDER = ['raw', 'nat', 'mangle', 'filter'];

/** Removes nodenet's chains and jumps from every legacy table that exists. Never creates a table. */
export async function removeLegacy(options: NetnsOption = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const family of FAMILIES) {
    const tables = await kernelCall(native().listTables(family === 'ipv4' ? 4 : 6, options.netns));
    const rank = (t: string) => (LEGACY_ORDER.includes(t) ? LEGACY_ORDER.indexOf(t) : LEGACY_ORDER.length);
    for (const table of [...tables].sort((a, b) => rank(a) - rank(b))) {
      const result = await apply({ family, table, chains: [], jumps: [] }, options);
      removed.push(...result.changes.map((c) => `${family} ${table}: ${c}`));
    }
  }
  return removed;
}

const ATTEMPTS = 20;

/**
 * Deletes nodenet's own nf_tables tables, in one batch against the generation it read (re-read
 * and retried when another writer changed the ruleset in between).
 */
export async function removeNft(options: NetnsOption = {}): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    let dump;
    try {
      dump = await kernelCall(native().nftDump({ rules: false }, options.netns));
    } catch (error) {
      // Without nf_tables there is nothing nodenet could have left there.
      if (isKernelError(error) && (error.code === 'EPROTONOSUPPORT' || error.code === 'ENOENT')) return [];
      throw error;
    }
    const ours = dump.tables.filter((t) => t.name === NFT_TABLE && NFT_FAMILIES.some((f) => f.nfproto === t.family));
    if (ours.length === 0) return [];
    try {
      await kernelCall(
        native().nftCommit({ generation: dump.generation, ops: ours.map((t) => ({ op: 'deleteTable' as const, family: t.family, table: t.name })) }, options.netns),
      );
    } catch (error) {
      if (isKernelError(error) && error.code === 'ERESTART' && attempt < ATTEMPTS) continue;
      throw error;
    }
    return ours.map((t) => `- table ${NFT_FAMILIES.find((f) => f.nfproto === t.family)!.name} ${t.name}`);
  }
}

/** Removes what nodenet left in the backend other than `keep`. */
export async function removeOtherBackend(keep: BackendName, options: NetnsOption = {}): Promise<string[]> {
  return keep === 'nftables' ? removeLegacy(options) : removeNft(options);
}
