// Rendering the structured form in iptables-save syntax, byte for byte as iptables-legacy-save
// (1.8.9) prints it, minus its "# Generated/Completed" comment lines.
import { findCodec } from './extension.js';
import type { Chain, Extension, IpFamily, Negatable, Rule, Table } from './types.js';

export interface SaveOptions {
  /** Prefix each rule with `[packets:bytes]`, as `iptables-save -c` does. */
  counters?: boolean;
}

function not(n: Negatable<unknown>): string {
  return n.invert ? ' !' : '';
}

function saveExtension(kind: 'match' | 'target', ext: Extension, family: IpFamily): { name: string; text: string } {
  const codec = findCodec(kind, ext.name, ext.revision, family);
  if (!codec || ext.options === null) {
    return { name: ext.name, text: ` [undecoded revision ${ext.revision}: ${ext.raw.toString('hex')}]` };
  }
  return { name: codec.alias ? codec.alias(ext.options) : ext.name, text: codec.save(ext.options, family) };
}

/** One rule as the `-A CHAIN ...` line iptables-save prints (no trailing newline). */
export function saveRule(chain: string, rule: Rule, family: IpFamily, options: SaveOptions = {}): string {
  let s = options.counters ? `[${rule.counters.packets}:${rule.counters.bytes}] -A ${chain}` : `-A ${chain}`;
  if (rule.source) s += `${not(rule.source)} -s ${rule.source.value}`;
  if (rule.destination) s += `${not(rule.destination)} -d ${rule.destination.value}`;
  if (rule.inInterface) s += `${not(rule.inInterface)} -i ${rule.inInterface.value}`;
  if (rule.outInterface) s += `${not(rule.outInterface)} -o ${rule.outInterface.value}`;
  if (rule.protocol) s += `${rule.protocol.invert ? ' !' : ''} -p ${rule.protocol.name ?? rule.protocol.number}`;
  if (rule.fragment) s += `${rule.fragment.invert ? ' !' : ''} -f`;
  for (const match of rule.matches) {
    const { name, text } = saveExtension('match', match, family);
    s += ` -m ${name}${text}`;
  }
  const t = rule.target;
  switch (t.kind) {
    case 'verdict':
      s += ` -j ${t.verdict}`;
      break;
    case 'jump':
      s += ` -${t.goto ? 'g' : 'j'} ${t.chain}`;
      break;
    case 'extension': {
      const { name, text } = saveExtension('target', t, family);
      s += ` -j ${name}${text}`;
      break;
    }
    case 'none':
      break;
  }
  return s;
}

function chainHeader(chain: Chain): string {
  return chain.builtin
    ? `:${chain.name} ${chain.policy ?? '-'} [${chain.counters.packets}:${chain.counters.bytes}]`
    : `:${chain.name} - [0:0]`;
}

/** A whole table, from `*name` to `COMMIT`, as iptables-save prints it. */
export function saveTable(table: Table, options: SaveOptions = {}): string {
  const lines = [`*${table.name}`];
  for (const chain of table.chains) lines.push(chainHeader(chain));
  for (const chain of table.chains) {
    for (const rule of chain.rules) lines.push(saveRule(chain.name, rule, table.family, options));
  }
  lines.push('COMMIT');
  return lines.join('\n') + '\n';
}
