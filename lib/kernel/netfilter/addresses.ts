// Address text exactly as glibc's inet_ntop and iptables print it, so rendered rules compare
// byte for byte with iptables-save.

/** Dotted quad of 4 bytes. */
export function formatIPv4(bytes: Uint8Array): string {
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** glibc inet_ntop(AF_INET6): the longest run (first on a tie, at least two) of zero groups becomes
 * `::`; IPv4-mapped and IPv4-compatible addresses end in a dotted quad. */
export function formatIPv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));

  let best = { base: -1, len: 0 };
  let cur = { base: -1, len: 0 };
  for (let i = 0; i < 8; i++) {
    if (words[i] === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 };
    } else if (cur.base !== -1) {
      if (best.base === -1 || cur.len > best.len) best = cur;
      cur = { base: -1, len: 0 };
    }
  }
  if (cur.base !== -1 && (best.base === -1 || cur.len > best.len)) best = cur;
  if (best.base !== -1 && best.len < 2) best = { base: -1, len: 0 };

  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 5 && words[5] === 0xffff))) {
      out += formatIPv4(bytes.subarray(12, 16));
      return out;
    }
    out += (words[i] ?? 0).toString(16);
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ':';
  return out;
}

/** Length of a contiguous netmask, or -1 when the mask has holes. */
export function prefixLength(mask: Uint8Array): number {
  let bits = 0;
  let i = 0;
  for (; i < mask.length && mask[i] === 0xff; i++) bits += 8;
  if (i < mask.length) {
    const byte = mask[i] ?? 0;
    let ones = 0;
    while (ones < 8 && byte & (0x80 >> ones)) ones++;
    if (((byte << ones) & 0xff) !== 0) return -1;
    bits += ones;
    for (i++; i < mask.length; i++) if (mask[i] !== 0) return -1;
  }
  return bits;
}

/** The 4 bytes of a dotted quad, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    bytes[i] = Number(p);
  }
  return bytes;
}

/** The 16 bytes of an IPv6 address (with `::` and an optional trailing dotted quad), or null. */
export function parseIPv6(text: string): Uint8Array | null {
  let head = text;
  let v4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    v4 = parseIPv4(text.slice(lastColon + 1));
    if (!v4) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return null;
  const all = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  }
  if (v4) bytes.set(v4, 12);
  return bytes;
}

/** An address of the family, or null. */
export function parseAddress(text: string, family: 'ipv4' | 'ipv6'): Uint8Array | null {
  return family === 'ipv4' ? parseIPv4(text) : parseIPv6(text);
}

function prefixMask(bits: number, size: number): Uint8Array {
  const mask = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const take = Math.max(0, Math.min(8, bits - 8 * i));
    mask[i] = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
  }
  return mask;
}

/**
 * "10.0.0.0/8", "10.0.0.1" (a single address), "10.0.0.0/255.0.255.0", "fd00::/64": the address
 * (masked, as iptables stores it) and the mask. Throws a RangeError naming what was wrong.
 */
export function parseCidr(text: string, family: 'ipv4' | 'ipv6'): { address: Uint8Array; mask: Uint8Array } {
  const size = family === 'ipv4' ? 4 : 16;
  const [addrText, maskText, extra] = text.split('/');
  const address = parseAddress(addrText ?? '', family);
  if (!address || extra !== undefined) throw new RangeError(`${JSON.stringify(text)} is not an ${family} address or prefix`);
  let mask: Uint8Array;
  if (maskText === undefined) mask = prefixMask(size * 8, size);
  else if (/^\d{1,3}$/.test(maskText) && Number(maskText) <= size * 8) mask = prefixMask(Number(maskText), size);
  else {
    const m = parseAddress(maskText, family);
    if (!m) throw new RangeError(`${JSON.stringify(text)} has an invalid mask`);
    mask = m;
  }
  return { address: address.map((b, i) => b & mask[i]!), mask };
}
