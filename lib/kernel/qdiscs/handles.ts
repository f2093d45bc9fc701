// Traffic-control handles as tc writes them: "1:", "1:10", "ffff:", "root", "none".

/** The parent value (0xffffffff) that means "root"; what parseHandle("root") returns. */
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

/**
 * The handle majors nodenet gives its qdiscs: 6e6e: ("nn") at the root, 6e6f: for a qdisc under
 * it. Ownership is known from the handle alone (qdiscs carry no other label), so nothing else on
 * a node should use these majors; tc picks 8000: and up when asked for none.
 */
export const NODENET_ROOT_HANDLE = '6e6e:';
export const NODENET_CHILD_HANDLE = '6e6f:';
/** The class of nodenet's root qdisc its child hangs from (netem has one class, :1). */
export const NODENET_CHILD_PARENT = '6e6e:1';

/** Whether a handle ("6e6e:", "6e6f:") is one of nodenet's. */
export function isNodenetHandle(handle: string): boolean {
  return handle === NODENET_ROOT_HANDLE || handle === NODENET_CHILD_HANDLE;
}
