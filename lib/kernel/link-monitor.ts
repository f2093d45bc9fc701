// Link notifications: rtnetlink's RTM_NEWLINK / RTM_DELLINK (multicast group RTNLGRP_LINK) in one
// network namespace, read by a native thread of the watch's own and delivered on the event loop.
//
// Notifications are lossy by nature: when they arrive faster than they are read, the kernel drops
// them and says only that it did. That arrives as an 'overflow' event, after which the consumer
// must list the links again (links.list) to learn the current state.
import { type KernelError, toKernelError } from './errors.js';
import type { NetnsOption } from './links.js';
import { native, type RawLinkEvent, type RawLinkWatch } from './native.js';

export interface LinkChange {
  /**
   * 'new' (RTM_NEWLINK): the link appeared, or something about it changed (flags, name, master,
   * its peer's namespace id); a change repeats the whole description. 'del' (RTM_DELLINK): the
   * link was deleted, or moved to another namespace.
   */
  type: 'new' | 'del';
  index: number;
  name: string;
  /** `IFLA_INFO_KIND` ("veth", "bridge", ...); null for loopback and hardware devices. */
  kind: string | null;
  /** The `IFF_*` bits (`links.linkFlagNames` gives the names `ip link` prints). */
  flags: number;
  /** `IFLA_LINK`: the peer or lower device's index, which may be in another namespace. */
  linkIndex: number | null;
  /** `IFLA_LINK_NETNSID`: the id (in the watched namespace) of the namespace `linkIndex` lives in. */
  linkNetnsId: number | null;
  /** `IFLA_MASTER`: the index of the bridge, bond or VRF the link is a port of. */
  master: number | null;
}

/** Notifications were lost (the socket's buffer or the monitor's queue overran): list links again. */
export interface LinkOverflow {
  type: 'overflow';
}

export type LinkEvent = LinkChange | LinkOverflow;

export interface WatchOptions extends NetnsOption {
  /** Called on the event loop for every event, in the kernel's order. */
  onEvent(event: LinkEvent): void;
  /**
   * The monitor stopped for good (a read failed); the watch is closed by then. Without this
   * handler the error is thrown from the event loop, as an EventEmitter's unhandled 'error' is.
   */
  onError?(error: KernelError): void;
}

export interface LinkWatch {
  /** Stops the monitor's thread and delivers no event after it returns. Idempotent. */
  close(): void;
  /** Closed by close() or by an error. */
  readonly closed: boolean;
  /** An open watch holds the event loop open (the default), like a listening socket. */
  ref(): this;
  /** Lets the process exit while the watch is still open. */
  unref(): this;
}

/**
 * One event as the addon reports it, in the form `watch` delivers it: absent values (an empty
 * kind, a zero index, a negative namespace id) become null. `watch` calls it for every event;
 * callers of the public API have no raw events of their own to pass.
 */
export function decodeLinkEvent(raw: RawLinkEvent): LinkEvent {
  if (raw.type === 'overflow') return { type: 'overflow' };
  return {
    type: raw.type,
    index: raw.index,
    name: raw.name,
    kind: raw.kind || null,
    flags: raw.flags,
    linkIndex: raw.linkIndex || null,
    linkNetnsId: raw.linkNetnsId >= 0 ? raw.linkNetnsId : null,
    master: raw.master || null,
  };
}

/**
 * Watches the links of `options.netns` (the caller's namespace when absent). Every change made
 * after this returns is reported. Throws a KernelError when the monitor cannot start there
 * (`ENOENT` for a namespace path that does not exist, `EPERM` without CAP_SYS_ADMIN to enter it).
 */
export function watch(options: WatchOptions): LinkWatch {
  const { onEvent, onError } = options;
  if (typeof onEvent !== 'function') throw new TypeError('linkMonitor.watch: onEvent must be a function');
  if (onError !== undefined && typeof onError !== 'function') throw new TypeError('linkMonitor.watch: onError must be a function');
  let closed = false;
  const deliver = (events: RawLinkEvent[], error: Error | null): void => {
    // A handler that throws does not cost the events after it: the first exception is rethrown
    // once the batch has been delivered.
    let thrown: { error: unknown } | undefined;
    for (const raw of events) {
      if (closed) return;
      try {
        onEvent(decodeLinkEvent(raw));
      } catch (e) {
        thrown ??= { error: e };
      }
    }
    if (error !== null && !closed) {
      closed = true;
      const kernelError = toKernelError(error) as KernelError;
      if (onError) onError(kernelError);
      else thrown ??= { error: kernelError };
    }
    if (thrown) throw thrown.error;
  };
  let handle: RawLinkWatch;
  try {
    handle = native().watchLinks(options.netns, deliver);
  } catch (error) {
    throw toKernelError(error);
  }
  const linkWatch: LinkWatch = {
    close() {
      closed = true;
      handle.close();
    },
    get closed() {
      return closed;
    },
    ref() {
      handle.ref();
      return this;
    },
    unref() {
      handle.unref();
      return this;
    },
  };
  return linkWatch;
}
