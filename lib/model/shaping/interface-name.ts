// nodenet.io/interface: the pod-side interface to shape (multus pods have more than eth0). Checked
// with the kernel's own rule (dev_valid_name), so a name refused here is one no link could have.
import { annotationError, quote, type Parsed } from './errors.js';

export const DEFAULT_INTERFACE = 'eth0';
/** IFNAMSIZ − 1: the kernel keeps the name in 16 bytes with its NUL. */
export const MAX_INTERFACE_BYTES = 15;

export const INTERFACE_FORM = `a Linux interface name like eth0 or net1: 1 to ${MAX_INTERFACE_BYTES} bytes, not "." or "..", without "/", ":", whitespace or NUL`;

/** UTF-8 bytes, as the name reaches the kernel (a lone surrogate becomes U+FFFD, as encoders do). */
function utf8(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    let cp = ch.codePointAt(0)!;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return out;
}

// The kernel's isspace() on a byte: the ASCII spaces, and 0xA0, which its Latin-1 ctype table also
// marks as a space — so a name with "à" (C3 A0 in UTF-8) is refused by the kernel, and here.
function kernelSpace(byte: number): boolean {
  return byte === 0x20 || (byte >= 0x09 && byte <= 0x0d) || byte === 0xa0;
}

export function parseInterfaceName(annotation: string, text: string): Parsed<string> {
  const bytes = utf8(text);
  let problem: string | null = null;
  if (bytes.length === 0) problem = 'is empty';
  else if (bytes.length > MAX_INTERFACE_BYTES) problem = `is ${bytes.length} bytes long`;
  else if (text === '.' || text === '..') problem = 'is a path component';
  else if (bytes.includes(0)) problem = 'contains a NUL';
  else if (bytes.includes(0x2f)) problem = 'contains "/"';
  else if (bytes.includes(0x3a)) problem = 'contains ":"';
  else if (bytes.some(kernelSpace)) problem = 'contains whitespace';
  if (problem === null) return { ok: true, value: text };
  return { ok: false, errors: [annotationError(annotation, text, null, `${quote(text)} ${problem}: expected ${INTERFACE_FORM}`)] };
}
