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

/**
 * A dotted quad in text[start, end) written as 4 bytes at buf[offset]; false (with buf partly
 * written) when it is not exactly four parts of 1-3 decimal digits each at most 255.
 */
export function putIPv4(text: string, start: number, end: number, buf: Uint8Array, offset: number): boolean {
  let part = 0;
  let digits = 0;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 48);
    } else if (c === 46) {
      if (digits === 0 || value > 255 || part === 3) return false;
      buf[offset + part++] = value;
      digits = 0;
      value = 0;
    } else {
      return false;
    }
  }
  if (part !== 3 || digits === 0 || value > 255) return false;
  buf[offset + 3] = value;
  return true;
}

/** The 4 bytes of a dotted quad, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const bytes = new Uint8Array(4);
  return putIPv4(text, 0, text.length, bytes, 0) ? bytes : null;
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

/** An address of the family written at buf[offset]; false when the text is not one. */
export function putAddress(text: string, family: 'ipv4' | 'ipv6', buf: Uint8Array, offset: number): boolean {
  if (family === 'ipv4') return putIPv4(text, 0, text.length, buf, offset);
  const a = parseIPv6(text);
  if (!a) return false;
  buf.set(a, offset);
  return true;
}

function putPrefixMask(bits: number, size: number, buf: Uint8Array, offset: number): void {
  for (let i = 0; i < size; i++) {
    const take = bits - 8 * i;
    buf[offset + i] = take >= 8 ? 0xff : take <= 0 ? 0 : (0xff << (8 - take)) & 0xff;
  }
}

/** Whether text[start, end) is 1-3 decimal digits; its value, or -1. */
function smallDecimal(text: string, start: number, end: number): number {
  const n = end - start;
  if (n < 1 || n > 3) return -1;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/**
 * parseCidr, written straight into buffers: the masked address at address[addressOffset], the mask
 * at mask[maskOffset]. Throws the same RangeErrors.
 */
export function putCidr(text: string, family: 'ipv4' | 'ipv6', address: Uint8Array, addressOffset: number, mask: Uint8Array, maskOffset: number): void {
  const size = family === 'ipv4' ? 4 : 16;
  const slash = text.indexOf('/');
  const addressEnd = slash < 0 ? text.length : slash;
  const extra = slash >= 0 && text.indexOf('/', slash + 1) >= 0;
  let ok: boolean;
  if (family === 'ipv4') ok = putIPv4(text, 0, addressEnd, address, addressOffset);
  else ok = putAddress(slash < 0 ? text : text.slice(0, slash), family, address, addressOffset);
  if (!ok || extra) throw new RangeError(`${JSON.stringify(text)} is not an ${family} address or prefix`);
  if (slash < 0) {
    putPrefixMask(size * 8, size, mask, maskOffset);
  } else {
    const bits = smallDecimal(text, slash + 1, text.length);
    if (bits >= 0 && bits <= size * 8) putPrefixMask(bits, size, mask, maskOffset);
    else {
      const valid = family === 'ipv4' ? putIPv4(text, slash + 1, text.length, mask, maskOffset) : putAddress(text.slice(slash + 1), family, mask, maskOffset);
      if (!valid) throw new RangeError(`${JSON.stringify(text)} has an invalid mask`);
    }
  }
  for (let i = 0; i < size; i++) address[addressOffset + i] = address[addressOffset + i]! & mask[maskOffset + i]!;
}

/**
 * "10.0.0.0/8", "10.0.0.1" (a single address), "10.0.0.0/255.0.255.0", "fd00::/64": the address
 * (masked, as iptables stores it) and the mask. Throws a RangeError naming what was wrong.
 */
export function parseCidr(text: string, family: 'ipv4' | 'ipv6'): { address: Uint8Array; mask: Uint8Array } {
  const size = family === 'ipv4' ? 4 : 16;
  const address = new Uint8Array(size);
  const mask = new Uint8Array(size);
  putCidr(text, family, address, 0, mask, 0);
  return { address, mask };
}
