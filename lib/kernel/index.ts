/**
 * nodenet/kernel: typed access to a node's kernel network state (links, bridge FDB, netfilter,
 * qdiscs) through nodenet's native addon. Every call runs on the addon's own worker threads,
 * optionally inside another network namespace, and never forks a process.
 */
export * as links from './links.js';
export * as fdb from './fdb.js';
export * as linkMonitor from './link-monitor.js';
export * as netfilter from './netfilter/index.js';
export * as qdiscs from './qdiscs/index.js';
export * as routes from './routes.js';
export * as runtime from './runtime.js';
export * as conntrack from './conntrack.js';
export * as sysctl from './sysctl.js';
export { KernelError, isKernelError } from './errors.js';
export type { BridgeInfo, BridgeSpec, Link, LinkCreate, LinkUpdate, NetnsOption, OperState, VxlanInfo, VxlanSpec } from './links.js';
export type { FdbChange, FdbEntry, FdbState } from './fdb.js';
export type { LinkChange, LinkEvent, LinkOverflow, LinkWatch, WatchOptions as LinkWatchOptions } from './link-monitor.js';
