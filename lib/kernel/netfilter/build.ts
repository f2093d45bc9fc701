// Short builders for RuleSpecs, so a rule reads like the iptables line it becomes:
//   rule({ source: '10.244.0.0/16', protocol: 'tcp' }, [comment('shop/web'), tcp({ dport: 80 })], dnat('10.96.0.10', 80))
import type { AddrtypeOptions, ConntrackOptions, MarkMatchOptions, PortRange, SctpOptions, TcpOptions, UdpOptions } from './matches.js';
import type { ExtensionSpec, RuleSpec, TargetSpec } from './spec.js';
import type { CtOptions, MarkTargetOptions, NatOptions } from './targets.js';
import type { Negatable } from './types.js';

/** Marks a value as negated (`! -s 10.0.0.0/8`). */
export function not<T>(value: T): Negatable<T> {
  return { value, invert: true };
}

type Maybe<T> = T | Negatable<T> | undefined;

function negatable<T>(v: Maybe<T>): Negatable<T> | null {
  if (v === undefined) return null;
  if (typeof v === 'object' && v !== null && 'invert' in v && 'value' in v) return v as Negatable<T>;
  return { value: v as T, invert: false };
}

/** The header fields `rule` takes: each a plain value, or one wrapped by `not` to negate it. */
export interface RuleHeader {
  source?: Maybe<string>;
  destination?: Maybe<string>;
  inInterface?: Maybe<string>;
  outInterface?: Maybe<string>;
  protocol?: Maybe<string>;
}

/** A rule: header fields, matches in order, and the target. */
export function rule(header: RuleHeader, matches: ExtensionSpec[], target: TargetSpec): RuleSpec {
  const protocol = negatable(header.protocol);
  return {
    source: negatable(header.source),
    destination: negatable(header.destination),
    inInterface: negatable(header.inInterface),
    outInterface: negatable(header.outInterface),
    protocol: protocol ? { name: protocol.value, invert: protocol.invert } : null,
    fragment: null,
    matches,
    target,
  };
}

// ---- matches -----------------------------------------------------------------------------------

/** `-m comment --comment TEXT` (at most 255 bytes; in nftables the rule's comment). */
export function comment(text: string): ExtensionSpec {
  return { name: 'comment', options: { comment: text } };
}

function ports(p: Maybe<number | [number, number]>): Negatable<PortRange> | null {
  const n = negatable(p);
  if (!n) return null;
  const [from, to] = Array.isArray(n.value) ? n.value : [n.value, n.value];
  return { value: { from, to }, invert: n.invert };
}

/** `-m tcp --sport/--dport`: a port or an inclusive [from, to] range, either possibly negated; needs `-p tcp`. */
export function tcp(o: { sport?: Maybe<number | [number, number]>; dport?: Maybe<number | [number, number]> }): ExtensionSpec {
  const options: TcpOptions = { sourcePorts: ports(o.sport), destinationPorts: ports(o.dport), option: null, flags: null };
  return { name: 'tcp', options };
}

/** `-m udp --sport/--dport`, as `tcp`; needs `-p udp`. */
export function udp(o: { sport?: Maybe<number | [number, number]>; dport?: Maybe<number | [number, number]> }): ExtensionSpec {
  const options: UdpOptions = { sourcePorts: ports(o.sport), destinationPorts: ports(o.dport) };
  return { name: 'udp', options };
}

/** `-m sctp`; revision 0 is the only one there is, so the rule does not depend on a default. */
export function sctp(o: { sport?: Maybe<number | [number, number]>; dport?: Maybe<number | [number, number]> }): ExtensionSpec {
  const options: SctpOptions = { sourcePorts: ports(o.sport), destinationPorts: ports(o.dport) };
  return { name: 'sctp', revision: 0, options };
}

/** `-m addrtype`; types are LOCAL, UNICAST, BROADCAST, ... */
export function addrtype(o: { src?: Maybe<string[]>; dst?: Maybe<string[]>; limitIfaceIn?: boolean; limitIfaceOut?: boolean }): ExtensionSpec {
  const options: AddrtypeOptions = {
    sourceTypes: negatable(o.src),
    destinationTypes: negatable(o.dst),
    limitInInterface: o.limitIfaceIn ?? false,
    limitOutInterface: o.limitIfaceOut ?? false,
  };
  return { name: 'addrtype', options };
}

/** `-m conntrack --ctstate ...` (INVALID, NEW, RELATED, ESTABLISHED, UNTRACKED, SNAT, DNAT). */
export function ctstate(states: Maybe<string[]>): ExtensionSpec {
  const options: ConntrackOptions = {
    state: negatable(states),
    stateAlias: false,
    protocol: null,
    originalSource: null,
    originalDestination: null,
    replySource: null,
    replyDestination: null,
    originalSourcePort: null,
    originalDestinationPort: null,
    replySourcePort: null,
    replyDestinationPort: null,
    status: null,
    expires: null,
    direction: null,
  };
  return { name: 'conntrack', options };
}

/** `-m mark --mark value[/mask]`. */
export function mark(value: number, mask = 0xffffffff, invert = false): ExtensionSpec {
  const options: MarkMatchOptions = { mark: value, mask, invert };
  return { name: 'mark', options };
}

// ---- targets -----------------------------------------------------------------------------------

/** `-j ACCEPT`. */
export const accept = (): TargetSpec => ({ kind: 'verdict', verdict: 'ACCEPT' });
/** `-j DROP`. */
export const drop = (): TargetSpec => ({ kind: 'verdict', verdict: 'DROP' });
/** `-j RETURN` (named so because `return` is a reserved word). */
export const returnTarget = (): TargetSpec => ({ kind: 'verdict', verdict: 'RETURN' });
/** `-j CHAIN`: continue in a chain and come back. */
export const jump = (chain: string): TargetSpec => ({ kind: 'jump', chain, goto: false });
/** `-g CHAIN`: continue in a chain without coming back. */
export const goTo = (chain: string): TargetSpec => ({ kind: 'jump', chain, goto: true });

/** `-j DNAT --to-destination address[:port]` (an IPv6 address without brackets). */
export function dnat(address: string, port?: number): TargetSpec {
  const options: NatOptions = {
    addresses: { from: address, to: address },
    ports: port === undefined ? null : { from: port, to: port, base: null },
    random: false,
    randomFully: false,
    persistent: false,
  };
  return { kind: 'extension', name: 'DNAT', options };
}

/** `-j MARK --set-xmark value/mask`: mark = (mark & ~mask) ^ value. */
export function setXMark(value: number, mask: number): TargetSpec {
  const options: MarkTargetOptions = { value, mask };
  return { kind: 'extension', name: 'MARK', options };
}

/** `-j MARK --or-mark bits` (how kube-proxy marks for masquerade). */
export const orMark = (bits: number): TargetSpec => setXMark(bits, bits);

/** `-j CT --notrack`. */
export function notrack(): TargetSpec {
  const options: CtOptions = {
    notrack: true,
    notrackAlias: false,
    helper: '',
    timeout: '',
    ctEvents: [],
    expectationEvents: [],
    zone: 0,
    zoneFromMark: false,
    zoneDirection: 'both',
  };
  return { kind: 'extension', name: 'CT', options };
}
