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
