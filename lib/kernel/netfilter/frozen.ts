// Deeply frozen rules can be remembered by identity: whatever was checked or encoded for one stays
// true for as long as the object lives. A caller that builds a rule once and hands the same object
// to every apply (the agent's model does, per Service) then pays for checking and encoding it once;
// a mutable rule is always looked at afresh, so an embedder reusing and editing one object is safe.
const frozen = new WeakSet<object>();

/** Whether v and everything reachable from it is frozen (a non-empty Buffer never is). */
export function isDeepFrozen(v: unknown): boolean {
  if (typeof v === 'function') return false;
  if (v === null || typeof v !== 'object') return true;
  if (frozen.has(v)) return true;
  if (!Object.isFrozen(v)) return false;
  for (const k of Object.keys(v)) if (!isDeepFrozen((v as Record<string, unknown>)[k])) return false;
  frozen.add(v);
  return true;
}

/** Freezes v and everything reachable from it; returns v. Buffers and typed arrays are left as they are. */
export function deepFreeze<T>(v: T): T {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || Object.isFrozen(v)) return v;
  for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  return Object.freeze(v);
}
