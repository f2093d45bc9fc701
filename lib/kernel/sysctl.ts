// net.* sysctls of a namespace (each namespace has its own).
import { kernelCall } from './errors.js';
import type { NetnsOption } from './links.js';
import { native } from './native.js';

/** The value of a net.* sysctl (e.g. net.netfilter.nf_conntrack_tcp_be_liberal), trimmed. */
export function read(name: string, options: NetnsOption = {}): Promise<string> {
  return kernelCall(native().readSysctl(name, options.netns));
}

/** Sets a net.* sysctl. */
export function write(name: string, value: string | number, options: NetnsOption = {}): Promise<void> {
  return kernelCall(native().writeSysctl(name, String(value), options.netns));
}
