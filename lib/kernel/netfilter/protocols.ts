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
const byName = new Map<string, number>();

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

/** The protocol number for a name iptables accepts (`tcp`, `ipv6-icmp`, `icmpv6`, `all`) or a number. */
export function protocolNumber(name: string | number): number {
  if (typeof name === 'number' || isDecimal(name)) {
    const n = Number(name);
    if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`protocol ${name} is not 0-255`);
    return n;
  }
  if (name === 'all') return 0;
  const cached = byName.get(name);
  if (cached !== undefined) return cached;
  let found = -1;
  for (const [n, known] of systemProtocols()) {
    if (known === name) {
      found = n;
      break;
    }
  }
  if (found < 0) {
    for (const [n, known] of XTABLES_PROTOS) {
      if (known === name) {
        found = n;
        break;
      }
    }
  }
  if (found < 0) throw new RangeError(`unknown protocol ${JSON.stringify(name)}`);
  byName.set(name, found); // only names /etc/protocols or libxtables know: bounded
  return found;
}


function isDecimal(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
