// The error every failing kernel call rejects with.

/** What the addon puts on every error it rejects with. */
export interface KernelErrorFields {
  message: string;
  code: string;
  errno: number;
  op: string;
  object: string;
  netns: string | null;
  extack: string | null;
}

/**
 * A kernel operation failed. `code` is the errno name (`ENOENT`), `op` the operation
 * (`netfilter.read`), `object` what it worked on (`table nat (ipv4)`), `netns` the namespace path
 * it ran in (null for the caller's own) and `extack` the kernel's own explanation when it gave one.
 */
export class KernelError extends Error {
  override readonly name = 'KernelError';
  readonly code: string;
  readonly errno: number;
  readonly op: string;
  readonly object: string;
  readonly netns: string | null;
  readonly extack: string | null;

  constructor(fields: KernelErrorFields) {
    super(fields.message);
    this.code = fields.code;
    this.errno = fields.errno;
    this.op = fields.op;
    this.object = fields.object;
    this.netns = fields.netns;
    this.extack = fields.extack;
  }
}

/** True for errors raised by nodenet's kernel layer. */
export function isKernelError(error: unknown): error is KernelError {
  return error instanceof KernelError;
}

function isNativeError(error: unknown): error is KernelErrorFields {
  if (!(error instanceof Error)) return false;
  const e = error as Error & Partial<KernelErrorFields>;
  return typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.op === 'string';
}

/** The error as a KernelError when the addon raised it; any other error unchanged. */
export function toKernelError(error: unknown): unknown {
  return isNativeError(error) ? new KernelError(error) : error;
}

/**
 * Awaits a native promise and rethrows its rejection as a KernelError. The native error is created
 * on the event loop with no JS frames; re-creating it here gives the caller a stack that leads back
 * to its own code.
 */
export async function kernelCall<T>(pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (error) {
    if (isNativeError(error)) throw new KernelError(error);
    throw error;
  }
}
