// The write side: a rule as nodenet asks for it. A Rule read from the kernel is also a RuleSpec, so
// a rule can be read and written back unchanged.
import type { IpFamily, Negatable, Verdict } from './types.js';

/** A match or target extension to write: decoded options (encoded by nodenet), or raw payload bytes. */
export interface ExtensionSpec<Options = unknown> {
  name: string;
  /** Default: the revision iptables 1.8.9 writes. */
  revision?: number;
  options?: Options | null;
  /** Used when options is absent or null: the payload exactly as the kernel should hold it. */
  raw?: Buffer;
}

export type TargetSpec =
  | { kind: 'verdict'; verdict: Verdict }
  | { kind: 'jump'; chain: string; goto?: boolean }
  | { kind: 'none' }
  | ({ kind: 'extension' } & ExtensionSpec);

export interface RuleSpec {
  /** `10.0.0.0/8`, `10.0.0.1`, `fd00::/64`; a host part is masked off as iptables does. */
  source?: Negatable<string> | null;
  destination?: Negatable<string> | null;
  /** `eth0`, or `veth+` for every name starting with veth. */
  inInterface?: Negatable<string> | null;
  outInterface?: Negatable<string> | null;
  /** By name (`tcp`) or number. */
  protocol?: { name?: string | null; number?: number; invert?: boolean } | null;
  /** IPv4 only. */
  fragment?: { invert: boolean } | null;
  /** In order; iptables-save prints them in this order. */
  matches?: ExtensionSpec[];
  target: TargetSpec;
}

/** One table's part that nodenet owns: its chains' complete content and the jumps into them. */
export interface TableState {
  family: IpFamily;
  table: string;
  /** Every chain nodenet wants (all named with the owned prefix), with its complete content. */
  chains: Array<{ name: string; rules: RuleSpec[] }>;
  /** Rules in chains nodenet does not own (builtins) that jump to one of its chains. */
  jumps: Array<{ chain: string; rule: RuleSpec }>;
}
