// Deleting conntrack entries (ctnetlink), e.g. the UDP flows of a DNAT that changed or went.
import { isIPv4, isIPv6 } from 'node:net';

import { kernelCall } from './errors.js';
import type { NetnsOption } from './links.js';
import { native } from './native.js';
import { parseIPv4, parseIPv6 } from './netfilter/addresses.js';
import { protocolNumber } from './netfilter/protocols.js';

export interface FlowFilter extends NetnsOption {
  /** Original-direction destination address (IPv4 or IPv6). */
  destination: string;
  /** Original-direction destination port; every port when absent. */
  port?: number;
  /** Default udp. */
  protocol?: 'udp' | 'tcp' | 'sctp' | number;
}

/**
 * Deletes every conntrack entry whose original direction goes to destination[:port] over protocol,
 * so that flows pinned to an old translation pick up the new rules. Resolves to how many were
 * deleted. Rejects with KernelError.
 */
export async function deleteFlows(filter: FlowFilter): Promise<number> {
  const family = isIPv4(filter.destination) ? 4 : isIPv6(filter.destination) ? 6 : null;
  if (family === null) throw new TypeError(`${JSON.stringify(filter.destination)} is not an IP address`);
  const bytes = family === 4 ? parseIPv4(filter.destination) : parseIPv6(filter.destination);
  const port = filter.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port ${port} is not 0-65535`);
  const request = { family, protocol: protocolNumber(filter.protocol ?? 'udp'), destination: Buffer.from(bytes!), port } as const;
  return kernelCall(native().deleteConntrack(request, filter.netns));
}
