// Protocol names as iptables prints them: the system's /etc/protocols first (iptables asks
// getprotobynumber), then the names libxtables knows by itself.
import { readFileSync } from 'node:fs';

const XTABLES_PROTOS: ReadonlyMap<number, string> = new Map([
  [6, 'tcp'],
  [132, 'sctp'],
  [17, 'udp'],
  [136, 'udplite'],
  [1, 'icmp'],
  [58, 'icmpv6'],
  [50, 'esp'],
  [51, 'ah'],
  [135, 'mh'],
]);

let system: Map<number, string> | undefined;

function systemProtocols(): Map<number, string> {
  if (system) return system;
  system = new Map();
  let text = '';
  try {
    text = readFileSync('/etc/protocols', 'latin1');
  } catch {
    return system; // no netbase: libxtables' own names apply
  }
  for (const line of text.split('\n')) {
    const fields = line.replace(/#.*/, '').trim().split(/\s+/);
    const [name, num] = fields;
    if (!name || !num || !/^\d+$/.test(num)) continue;
    const n = Number(num);
    if (!system.has(n)) system.set(n, name);
  }
  return system;
}

/** The name iptables prints for an IP protocol number, or null if it prints the number. */
export function protocolName(proto: number): string | null {
  return systemProtocols().get(proto) ?? XTABLES_PROTOS.get(proto) ?? null;
}
