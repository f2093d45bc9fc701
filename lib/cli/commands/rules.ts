import { netfilter } from '../../kernel/index.js';
import type { IpFamily, Table } from '../../kernel/netfilter/types.js';
import { toJson } from '../output.js';

export const rulesHelp = `nodenet rules [--netns PATH] [--family ipv4|ipv6] [--table NAME] [--counters] [--json]
  Legacy iptables tables of a namespace, read through libiptc. Without --table, every table that
  exists (reading never creates one). Prints iptables-save syntax, or with --json the structured
  form: every rule decoded, plus "text", its iptables-save line.`;

export interface RulesOptions {
  netns?: string;
  family: IpFamily;
  table?: string;
  counters: boolean;
  json: boolean;
}

function withText(table: Table, counters: boolean) {
  return {
    ...table,
    chains: table.chains.map((chain) => ({
      ...chain,
      rules: chain.rules.map((rule) => ({ ...rule, text: netfilter.saveRule(chain.name, rule, table.family, { counters }) })),
    })),
  };
}

export async function rulesCommand(options: RulesOptions): Promise<string> {
  const where = { family: options.family, ...(options.netns === undefined ? {} : { netns: options.netns }) };
  const names = options.table !== undefined ? [options.table] : await netfilter.tables(where);
  const tables: Table[] = [];
  for (const table of names) tables.push(await netfilter.read({ ...where, table }));
  if (options.json) {
    const out = tables.map((t) => withText(t, options.counters));
    return toJson(options.table !== undefined ? out[0] : out) + '\n';
  }
  return tables.map((t) => netfilter.saveTable(t, { counters: options.counters })).join('');
}
