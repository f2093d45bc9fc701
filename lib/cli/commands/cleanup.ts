import { netfilter } from '../../kernel/index.js';
import type { IpFamily } from '../../kernel/netfilter/index.js';
import { removeNft } from '../../kernel/netfilter/migrate.js';
import { acquireNodeLock, DEFAULT_NODE_LOCK, NodeLockBusyError } from '../../controller/node-lock.js';
import { parseShapingConfig } from '../../controller/shaping/config.js';
import { findOwnedQdiscs, removeOwnedQdisc } from '../../controller/shaping/owned.js';
import { ALIAS_PREFIX } from '../../controller/overlays/kernel-sync.js';
import { links } from '../../kernel/index.js';
import { toJson } from '../output.js';

export const cleanupHelp = `nodenet cleanup [--netns PATH] [--json]
  Removes everything nodenet owns, from both backends: its NODENET-* chains and the jumps into
  them in every legacy iptables table of both families, its own nftables tables (ip nodenet,
  ip6 nodenet), and its qdiscs (handle 6e6e:) on the node's links and in the pod namespaces under
  SHAPING_NETNS_DIRS (default /var/run/netns) that are joined to the node, and its overlay links
  (alias nodenet:link/...). Nothing else is touched and no table is created.
  Refuses while an agent holds the node lock (NODENET_LOCK_FILE, default ${DEFAULT_NODE_LOCK}),
  changing nothing and exiting 1: the agent would put its rules back. On a cluster, delete the
  agent's DaemonSet, then apply deploy/uninstall.yaml, which runs this on every node.`;

// raw before filter: NOTRACK rules must go before the ACCEPTs that untracked DNS packets need.
const ORDER = ['raw', 'mangle', 'nat', 'filter', 'security'];

export async function cleanupCommand(options: { netns?: string; json: boolean }): Promise<string> {
  let lock;
  try {
    lock = await acquireNodeLock(process.env.NODENET_LOCK_FILE || DEFAULT_NODE_LOCK);
  } catch (error) {
    if (!(error instanceof NodeLockBusyError)) throw error;
    process.stderr.write(`nodenet cleanup: ${error.message}; nothing was changed: stop the agent first (on a cluster, delete its DaemonSet)\n`);
    process.exitCode = 1;
    return '';
  }
  try {
    const where = options.netns === undefined ? {} : { netns: options.netns };
    const removed: Array<{ family: IpFamily | 'nftables' | 'qdiscs' | 'links'; table: string; changes: string[] }> = [];
    for (const family of ['ipv4', 'ipv6'] as const) {
      const tables = await netfilter.tables({ ...where, family });
      const ordered = [...tables].sort((a, b) => rank(a) - rank(b));
      for (const table of ordered) {
        const result = await netfilter.legacyBackend.apply({ family, table, chains: [], jumps: [] }, where);
        if (result.changes.length) removed.push({ family, table, changes: result.changes });
      }
    }
    const nft = await removeNft(where);
    if (nft.length) removed.push({ family: 'nftables', table: 'nodenet', changes: nft });
    const { netnsDirs } = parseShapingConfig(process.env);
    const shaped: string[] = [];
    for (const q of await findOwnedQdiscs({ ...where, netnsDirs })) {
      if (await removeOwnedQdisc(q)) shaped.push(`removed ${q.kind} 6e6e: from ${q.device}${q.netns === undefined || q.netns === options.netns ? '' : ` in ${q.netns}`}`);
    }
    if (shaped.length) removed.push({ family: 'qdiscs', table: 'shaping', changes: shaped });
    // VXLANs before the bridges they are enslaved to.
    const overlay = (await links.list(where)).filter((l) => (l.alias ?? '').startsWith(ALIAS_PREFIX)).sort((a, b) => Number(b.kind === 'vxlan') - Number(a.kind === 'vxlan'));
    const gone: string[] = [];
    for (const l of overlay) {
      await links.remove({ ...where, name: l.name });
      gone.push(`removed ${l.kind ?? 'link'} ${l.name}`);
    }
    if (gone.length) removed.push({ family: 'links', table: 'overlays', changes: gone });
    if (options.json) return toJson(removed) + '\n';
    if (!removed.length) return 'nothing of nodenet\'s was left\n';
    return removed.map((r) => `${r.family} ${r.table}:\n${r.changes.map((c) => `  ${c}\n`).join('')}`).join('');
  } finally {
    lock.release();
  }
}

function rank(table: string): number {
  const i = ORDER.indexOf(table);
  return i === -1 ? ORDER.length : i;
}
