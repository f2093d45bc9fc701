// Addresses and prefixes as numbers, so that the model can tell families apart, sort numerically,
// de-duplicate differently spelled equal addresses ("2001:DB8::1" and "2001:db8:0::1") and
// intersect prefixes. The model may not import the kernel layer's parsers (they are values, and
// lib/model imports only build.ts's builders), hence its own small ones.
import type { IpFamily } from '../kernel/netfilter/index.js';

export interface Address {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  /** Host bits already cleared. */
  value: bigint;
  prefix: number;
}

export const FAMILY_BITS: Readonly<Record<IpFamily, number>> = { ipv4: 32, ipv6: 128 };

function parseIPv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const p of parts) {
    // Leading zeros are read as decimal, as kube-proxy and Go before 1.17 did for old objects.
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    value = (value << 8n) | BigInt(Number(p));
  }
  return value;
}

function parseIPv6(text: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let tail: bigint | null = null;
  if (text.includes('.')) {
    const cut = text.lastIndexOf(':');
    tail = parseIPv4(text.slice(cut + 1));
    if (tail === null) return null;
    head = `${text.slice(0, cut + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groupsOf(halves[0] ?? '');
  const right = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  if (tail !== null) value = (value & ~0xffffffffn) | tail;
  return value;
}

/** An IPv4 or IPv6 address (no prefix, no zone), or null. */
export function parseAddress(text: string | null | undefined): Address | null {
  if (typeof text !== 'string' || text === '') return null;
  if (text.includes(':')) {
    const v = parseIPv6(text);
    return v === null ? null : { family: 'ipv6', value: v };
  }
  const v = parseIPv4(text);
  return v === null ? null : { family: 'ipv4', value: v };
}

function mask(family: IpFamily, prefix: number): bigint {
  const bits = BigInt(FAMILY_BITS[family]);
  const host = bits - BigInt(prefix);
  return ((1n << bits) - 1n) ^ ((1n << host) - 1n);
}

/**
 * `10.244.0.0/16`, `fd00::/64`; a bare address is a host prefix. With `strict`, host bits must be
 * clear (a configured prefix with host bits set is more likely a typo than an intent).
 */
export function parseCidr(text: string | null | undefined, strict = false): Cidr | null {
  if (typeof text !== 'string') return null;
  const [addrText, prefixText, extra] = text.split('/');
  if (extra !== undefined) return null;
  const a = parseAddress(addrText);
  if (!a) return null;
  const bits = FAMILY_BITS[a.family];
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) return null;
    prefix = Number(prefixText);
  }
  const value = a.value & mask(a.family, prefix);
  if (strict && value !== a.value) return null;
  return { family: a.family, value, prefix };
}

/** Whether the text is a prefix whose host bits are set (for a helpful configuration error). */
export function hostBitsSet(text: string): Cidr | null {
  const loose = parseCidr(text);
  return loose && !parseCidr(text, true) ? loose : null;
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join('.');
}

// RFC 5952: lower case, the longest run of two or more zero groups (the first on a tie) as "::".
function formatIPv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (best.len < 2) return hex(groups);
  return `${hex(groups.slice(0, best.at))}::${hex(groups.slice(best.at + best.len))}`;
}

export function formatAddress(a: Address): string {
  return a.family === 'ipv4' ? formatIPv4(a.value) : formatIPv6(a.value);
}

/** `10.244.0.0/16`; a host prefix is printed as the bare address (iptables adds /32 itself). */
export function formatCidr(c: Cidr): string {
  const text = formatAddress(c);
  return c.prefix === FAMILY_BITS[c.family] ? text : `${text}/${c.prefix}`;
}

export function compareAddresses(a: Address, b: Address): number {
  if (a.family !== b.family) return a.family < b.family ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function compareCidrs(a: Cidr, b: Cidr): number {
  return compareAddresses(a, b) || a.prefix - b.prefix;
}

/** Whether every address of `inner` is inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.prefix <= inner.prefix && (inner.value & mask(outer.family, outer.prefix)) === outer.value;
}

/** Two prefixes are either disjoint or nested, so their intersection is the narrower one or nothing. */
export function intersectCidrs(a: Cidr, b: Cidr): Cidr | null {
  if (cidrContains(a, b)) return b;
  if (cidrContains(b, a)) return a;
  return null;
}

/** Sorted, without duplicates and without prefixes already covered by another in the list. */
export function minimalCidrs(cidrs: Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((x, y) => x.prefix - y.prefix || compareCidrs(x, y));
  const kept: Cidr[] = [];
  for (const c of sorted) if (!kept.some((k) => cidrContains(k, c))) kept.push(c);
  return kept.sort(compareCidrs);
}

/** Sorted, without duplicates. */
export function uniqueAddresses(addresses: Address[]): Address[] {
  const sorted = [...addresses].sort(compareAddresses);
  return sorted.filter((a, i) => i === 0 || compareAddresses(sorted[i - 1]!, a) !== 0);
}
