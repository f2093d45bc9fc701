// Independent witnesses of kernel state: the system's own tools, run inside a test namespace.
import type { TestNetns } from './netns.js';
import { runAllowingFailure } from './exec.js';
import type { IpFamily } from '../../lib/kernel/netfilter/types.js';

/** `iptables-legacy-save` (or ip6tables-) of one table, without its "#" comment lines. */
export async function iptablesSave(ns: TestNetns, family: IpFamily, table: string, counters = false): Promise<string> {
  const tool = family === 'ipv4' ? 'iptables-legacy-save' : 'ip6tables-legacy-save';
  const out = await ns.exec(tool, ['-t', table, ...(counters ? ['-c'] : [])]);
  return out
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n');
}

/**
 * Both families' whole legacy rulesets, counters left out (traffic is not what is compared), and
 * tables with no rule and no chain of their own too: an empty table is no rule of anyone's.
 */
export async function legacyRulesets(ns: TestNetns): Promise<string> {
  const dump = async (tool: string) =>
    (await ns.exec(tool, []))
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .map((l) => l.replace(/ \[\d+:\d+\]$/, ''))
      .join('\n')
      .split(/(?=^\*)/m)
      .filter((table) => /^-A |^:\S+ -$/m.test(table))
      .join('');
  return (await dump('iptables-legacy-save')) + (await dump('ip6tables-legacy-save'));
}

/** Feeds a dump to `iptables-legacy-restore` in the namespace. */
export async function iptablesRestore(ns: TestNetns, family: IpFamily, dump: string): Promise<void> {
  const tool = family === 'ipv4' ? 'iptables-legacy-restore' : 'ip6tables-legacy-restore';
  await ns.exec(tool, [], dump);
}

/** Runs `iptables-legacy` (or ip6tables-legacy) in the namespace. */
export async function iptables(ns: TestNetns, family: IpFamily, args: string[]): Promise<string> {
  return ns.exec(family === 'ipv4' ? 'iptables-legacy' : 'ip6tables-legacy', args);
}

/** The legacy tables the kernel has instantiated in the namespace (reading this creates none). */
export async function legacyTableNames(ns: TestNetns, family: IpFamily): Promise<string[]> {
  const file = family === 'ipv4' ? '/proc/net/ip_tables_names' : '/proc/net/ip6_tables_names';
  const out = await ns.exec('cat', [file]);
  return out.split('\n').filter(Boolean);
}

export interface IpLinkJson {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate: string;
  txqlen?: number;
  link_type: string;
  address?: string;
  master?: string;
  ifalias?: string;
  link_index?: number;
  link_netnsid?: number;
  link?: string;
  linkinfo?: { info_kind?: string; info_slave_kind?: string };
}

/** `ip -d -j link show` in the namespace. */
export async function ipLinks(ns: TestNetns): Promise<IpLinkJson[]> {
  return JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show'])) as IpLinkJson[];
}

/** `nft -j list table <family> <table>` in the namespace, as nft prints it (null: no such table). */
export async function nftTableJson(ns: TestNetns, family: 'ip' | 'ip6' | 'inet', table: string): Promise<NftJson | null> {
  const result = await runAllowingFailure('ip', ['netns', 'exec', ns.name, 'nft', '-j', 'list', 'table', family, table]);
  if (result.code !== 0) {
    if (/No such file or directory/.test(result.stderr)) return null;
    throw new Error(`nft -j list table ${family} ${table} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return JSON.parse(result.stdout) as NftJson;
}

/** nft's JSON: a list of objects, each with one key naming its kind. */
export interface NftJson {
  nftables: Array<{ table?: NftJsonTable; chain?: NftJsonChain; rule?: NftJsonRule; metainfo?: unknown }>;
}
export interface NftJsonTable {
  family: string;
  name: string;
  handle: number;
}
export interface NftJsonChain {
  family: string;
  table: string;
  name: string;
  handle: number;
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}
export interface NftJsonRule {
  family: string;
  table: string;
  chain: string;
  handle: number;
  comment?: string;
  expr: Array<Record<string, unknown>>;
}

/** Packets counted by the rules of one chain of an nft table (its counter statements). */
export function nftChainPackets(json: NftJson | null, chain: string): number {
  let packets = 0;
  for (const item of json?.nftables ?? []) {
    if (item.rule?.chain !== chain) continue;
    for (const e of item.rule.expr) {
      const counter = e.counter as { packets?: number } | undefined;
      if (counter?.packets) packets += counter.packets;
    }
  }
  return packets;
}
