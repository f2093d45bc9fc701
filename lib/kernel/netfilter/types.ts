// The structured form of an iptables table, as read from the kernel.

export type IpFamily = 'ipv4' | 'ipv6';

/** A value a rule matches on, possibly negated (`! -s 10.0.0.0/8`). */
export interface Negatable<T> {
  value: T;
  invert: boolean;
}

export interface Protocol {
  number: number;
  /** The name iptables prints (`tcp`, `ipv6-icmp`); null when the number has none. */
  name: string | null;
  invert: boolean;
}

/**
 * A match or target extension. `raw` is the payload exactly as the kernel holds it, so an extension
 * nodenet does not decode is still carried intact; `options` is its decoded form, or null when
 * nodenet does not know this name/revision.
 */
export interface Extension<Options = unknown> {
  name: string;
  revision: number;
  raw: Buffer;
  options: Options | null;
}

export type Verdict = 'ACCEPT' | 'DROP' | 'QUEUE' | 'RETURN';

export type Target =
  /** A built-in verdict. */
  | { kind: 'verdict'; verdict: Verdict }
  /** Continue in a user chain (`-j CHAIN`), or go there without returning (`-g CHAIN`). */
  | { kind: 'jump'; chain: string; goto: boolean }
  /** No target: the rule only counts packets and falls through. */
  | { kind: 'none' }
  /** A target extension (DNAT, MARK, CT, ...). */
  | ({ kind: 'extension' } & Extension);

export interface Counters {
  packets: bigint;
  bytes: bigint;
}

export interface Rule {
  /** `-s`, as iptables prints it: `10.0.0.0/8`, or `10.0.0.0/255.0.255.0` for a non-contiguous mask. */
  source: Negatable<string> | null;
  destination: Negatable<string> | null;
  /** `-i`; a trailing `+` is a wildcard, as in iptables. */
  inInterface: Negatable<string> | null;
  outInterface: Negatable<string> | null;
  protocol: Protocol | null;
  /** IPv4 `-f` (second and later fragments only); inverted, non-fragments and first fragments. */
  fragment: { invert: boolean } | null;
  matches: Extension[];
  target: Target;
  counters: Counters;
}

export interface Chain {
  name: string;
  builtin: boolean;
  /** Builtin chains only. */
  policy: Verdict | null;
  /** Policy counters (builtin chains only; user chains report zero). */
  counters: Counters;
  /** How many rules jump here (user chains only). */
  references: number;
  rules: Rule[];
}

export interface Table {
  family: IpFamily;
  name: string;
  /** In libiptc's order: builtin chains in hook order, then user chains sorted by name. */
  chains: Chain[];
}
