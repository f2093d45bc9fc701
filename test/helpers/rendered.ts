// What a rendered state would look like in iptables-save, through the kernel layer's own encoder
// and decoder: model tests compare whole lines, as an operator reads them.
import { decodeRule } from '../../lib/kernel/netfilter/decode.js';
import { encodeRule } from '../../lib/kernel/netfilter/encode.js';
import { saveRule } from '../../lib/kernel/netfilter/save.js';
import type { IpFamily, RuleSpec } from '../../lib/kernel/netfilter/index.js';
import type { DesiredState } from '../../lib/model/index.js';

/** One rule as `-A CHAIN ...`. */
export function line(chain: string, r: RuleSpec, family: IpFamily): string {
  const e = encodeRule(r, family);
  const standard = e.target.standard;
  const raw = { ip: e.ip, packets: 0n, bytes: 0n, matches: e.matches, target: standard ? { name: '', revision: 0, data: Buffer.alloc(0) } : e.target, verdict: standard ? e.target.name : '' };
  return saveRule(chain, decodeRule(raw, family), family);
}

/** A table of the state: its jumps, then each chain as `:NAME` followed by its rules. */
export function save(state: DesiredState, family: IpFamily, table: string): string[] {
  const ts = state.tables.find((x) => x.family === family && x.table === table);
  if (!ts) throw new Error(`no ${family} ${table}`);
  return [...ts.jumps.map((j) => line(j.chain, j.rule, family)), ...ts.chains.flatMap((c) => [`:${c.name}`, ...c.rules.map((r) => line(c.name, r, family))])];
}
