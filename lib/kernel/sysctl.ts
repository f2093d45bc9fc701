// net.* sysctls of a namespace (each namespace has its own).
import { kernelCall } from './errors.js';
import type { NetnsOption } from './links.js';
import { native } from './native.js';

/**
 * The value of a net.* sysctl (e.g. net.netfilter.nf_conntrack_tcp_be_liberal), trimmed, read in
 * the namespace. Rejects with a KernelError: `EINVAL` for a name outside net.*, `ENOENT` when the
 * kernel has no such setting. Not an async function: a name that is not a string throws a
 * TypeError synchronously.
 */
export function read(name: string, options: NetnsOption = {}): Promise<string> {
  return kernelCall(native().readSysctl(name, options.netns));
}

/**
 * Sets a net.* sysctl in the namespace (the value is written as a string with a newline). Rejects
 * with a KernelError as `read` does, and with the kernel's errno (`EINVAL`, `EACCES`, ...) when
 * it refuses the value or the caller may not write it.
 */
export function write(name: string, value: string | number, options: NetnsOption = {}): Promise<void> {
  return kernelCall(native().writeSysctl(name, String(value), options.netns));
}
