// Traffic-control handles as tc writes them: "1:", "1:10", "ffff:", "root", "none".

export const TC_H_ROOT = 0xffffffff;
export const TC_H_UNSPEC = 0;

/** Parses "MAJ:MIN" (hex, either part may be empty), "root" or "none" into the u32 the kernel uses. */
export function parseHandle(text: string): number {
  if (text === 'root') return TC_H_ROOT;
  if (text === 'none') return TC_H_UNSPEC;
  const m = text.match(/^([0-9a-fA-F]{0,4}):([0-9a-fA-F]{0,4})$/);
  if (!m) throw new TypeError(`${JSON.stringify(text)} is not a tc handle (MAJ:MIN in hex, "root" or "none")`);
  return ((parseInt(m[1] || '0', 16) << 16) | parseInt(m[2] || '0', 16)) >>> 0;
}

/** Formats a handle as tc prints it: "root", "1:", "1:10". */
export function formatHandle(handle: number): string {
  if (handle === TC_H_ROOT) return 'root';
  const major = (handle >>> 16).toString(16);
  const minor = handle & 0xffff;
  return minor === 0 ? `${major}:` : `${major}:${minor.toString(16)}`;
}
