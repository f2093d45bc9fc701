// Stale UDP conntrack flows. A UDP "connection" is a conntrack entry that lives as long as packets
// keep coming, and NAT is decided only for its first packet: a client that keeps sending to an
// external IP keeps the translation (or the absence of one) it got when it started, whatever the
// rules say now. So whenever the DNAT of an external IP:port appears, changes or goes, the flows to
// that IP:port are deleted, and their next packet is translated by the current rules.
import { netfilter } from '../../kernel/index.js';
import type { IpFamily, NatOptions, RuleSpec, UdpOptions } from '../../kernel/netfilter/index.js';

/** "address port" of a UDP destination → "address:port" it is DNATed to. */
export type UdpDnats = Map<string, string>;

export interface FlowDestination {
  destination: string;
  port: number;
}

// One spelling per address, whether it came from the model or was decoded from the kernel.
function hostAddress(value: string): string | null {
  const [address, prefix] = value.split('/');
  if (!address) return null;
  const v6 = address.includes(':');
  if (prefix !== undefined && prefix !== (v6 ? '128' : '32')) return null; // a range: no single flow key
  return v6 ? new URL(`http://[${address}]/`).hostname.slice(1, -1) : address;
}

function udpDnat(rule: RuleSpec): [string, string] | null {
  const t = rule.target;
  if (t.kind !== 'extension' || t.name !== 'DNAT') return null;
  const proto = rule.protocol;
  if (!proto || proto.invert || !(proto.name === 'udp' || proto.number === 17)) return null;
  if (!rule.destination || rule.destination.invert) return null;
  const address = hostAddress(rule.destination.value);
  const ports = (rule.matches ?? []).find((m) => m.name === 'udp')?.options as UdpOptions | null | undefined;
  const range = ports?.destinationPorts;
  const nat = t.options as NatOptions | null | undefined;
  if (!address || !range || range.invert || range.value.from !== range.value.to || !nat?.addresses) return null;
  return [`${address} ${range.value.from}`, `${hostAddress(nat.addresses.from) ?? nat.addresses.from}:${nat.ports?.from ?? range.value.from}`];
}

/** The UDP DNATs in nodenet's chains of one nat table (desired, or read from the kernel). */
export function udpDnats(chains: ReadonlyArray<{ name: string; rules: readonly RuleSpec[] }>): UdpDnats {
  const out: UdpDnats = new Map();
  for (const chain of chains) {
    if (!chain.name.startsWith(netfilter.OWNED_PREFIX)) continue;
    for (const rule of chain.rules) {
      const entry = udpDnat(rule);
      if (entry) out.set(entry[0], entry[1]);
    }
  }
  return out;
}

/** UDP destinations whose translation appeared, changed or went between two states. */
export function changedDestinations(before: UdpDnats, after: UdpDnats): FlowDestination[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  const out: FlowDestination[] = [];
  for (const key of [...keys].sort()) {
    if (before.get(key) === after.get(key)) continue;
    const [destination, port] = key.split(' ');
    out.push({ destination: destination!, port: Number(port) });
  }
  return out;
}

/** What nodenet's nat chains of a family hold now (empty when the table does not exist). */
export async function kernelUdpDnats(family: IpFamily, netns: string | undefined): Promise<UdpDnats> {
  const where = { family, ...(netns === undefined ? {} : { netns }) };
  if (!(await netfilter.tables(where)).includes('nat')) return new Map();
  const table = await netfilter.read({ ...where, table: 'nat' });
  return udpDnats(table.chains);
}
