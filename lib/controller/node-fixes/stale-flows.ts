// Stale UDP conntrack flows. A UDP "connection" is a conntrack entry that lives as long as packets
// keep coming, and NAT is decided only for its first packet: a client that keeps sending to an
// external IP keeps the translation (or the absence of one) it got when it started, whatever the
// rules say now. So whenever the DNAT of an external IP:port appears, changes or goes, the flows to
// that IP:port are deleted, and their next packet is translated by the current rules.
import { kernelCall } from '../../kernel/errors.js';
import { netfilter } from '../../kernel/index.js';
import { NFT_TABLE, type BackendName } from '../../kernel/netfilter/detect.js';
import { native, type RawNftExpr } from '../../kernel/native.js';
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

// The model hands out the same RuleSpec object for a rule that did not change, so each UDP DNAT is
// parsed once, not once per reconcile (an IPv6 address goes through the URL parser).
const parsed = new WeakMap<RuleSpec, [string, string] | null>();

function udpDnat(rule: RuleSpec): [string, string] | null {
  const t = rule.target;
  if (t.kind !== 'extension' || t.name !== 'DNAT') return null;
  const proto = rule.protocol;
  if (!proto || proto.invert || !(proto.name === 'udp' || proto.number === 17)) return null;
  let entry = parsed.get(rule);
  if (entry === undefined) parsed.set(rule, (entry = udpDnatKey(rule, t.options as NatOptions | null | undefined)));
  return entry;
}

function udpDnatKey(rule: RuleSpec, nat: NatOptions | null | undefined): [string, string] | null {
  if (!rule.destination || rule.destination.invert) return null;
  const address = hostAddress(rule.destination.value);
  const ports = (rule.matches ?? []).find((m) => m.name === 'udp')?.options as UdpOptions | null | undefined;
  const range = ports?.destinationPorts;
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
  // Only the changed keys are sorted: every reconcile compares all of them.
  const changed: string[] = [];
  for (const [key, to] of before) if (after.get(key) !== to) changed.push(key);
  for (const key of after.keys()) if (!before.has(key)) changed.push(key);
  return changed.sort().map((key) => {
    const [destination, port] = key.split(' ');
    return { destination: destination!, port: Number(port) };
  });
}

/** What nodenet's nat chains of a family hold now (empty when the table does not exist). */
export async function kernelUdpDnats(family: IpFamily, netns: string | undefined, backend: BackendName = 'iptables-legacy'): Promise<UdpDnats> {
  if (backend === 'nftables') return nftUdpDnats(family, netns);
  const where = { family, ...(netns === undefined ? {} : { netns }) };
  if (!(await netfilter.tables(where)).includes('nat')) return new Map();
  const table = await netfilter.read({ ...where, table: 'nat' });
  return udpDnats(table.chains);
}

const NAT_ADDRESS = { ipv4: { offset: 16, size: 4 }, ipv6: { offset: 24, size: 16 } } as const;

/**
 * One nft rule's UDP DNAT, read by following its registers: a load (payload or meta) followed by
 * an equality compare is a match on that field, an immediate fills a register the nat expression
 * takes its address and port from. A rule with anything else (a negation, a masked address, a
 * port range) has no single flow key and, like its legacy counterpart, is not a UDP DNAT here.
 */
export function nftUdpDnat(exprs: readonly RawNftExpr[], family: IpFamily): [string, string] | null {
  const loads = new Map<number, string>();
  const values = new Map<number, Buffer>();
  const field = NAT_ADDRESS[family];
  let l4: number | null = null;
  let daddr: Buffer | null = null;
  let dport: number | null = null;
  let target: [Buffer, number | null] | null = null;
  for (const e of exprs) {
    const num = (k: string) => (typeof e[k] === 'number' ? (e[k] as number) : null);
    const buf = (k: string) => (Buffer.isBuffer(e[k]) ? (e[k] as Buffer) : null);
    if (e.name === 'payload' && num('dreg') !== null) loads.set(num('dreg')!, `payload ${num('base')} ${num('offset')} ${num('len')}`);
    else if (e.name === 'meta' && num('dreg') !== null) loads.set(num('dreg')!, `meta ${num('key')}`);
    else if (e.name === 'bitwise') loads.set(num('dreg') ?? -1, 'masked');
    else if (e.name === 'immediate' && buf('data') && num('dreg') !== null) values.set(num('dreg')!, buf('data')!);
    else if (e.name === 'cmp') {
      const data = buf('data');
      const load = loads.get(num('sreg') ?? -1);
      if (!data || !load) return null;
      if (num('op') !== 0) return null;
      if (load === 'meta 16') l4 = data[0] ?? null;
      else if (load === `payload 1 ${field.offset} ${field.size}`) daddr = data;
      else if (load === 'payload 2 2 2') dport = data.readUInt16BE(0);
    } else if (e.name === 'nat' && num('type') === 1) {
      const address = values.get(num('reg_addr_min') ?? -1);
      const port = values.get(num('reg_proto_min') ?? -1);
      if (!address) return null;
      target = [address, port && port.length >= 2 ? port.readUInt16BE(0) : null];
    }
  }
  if (l4 !== 17 || !daddr || dport === null || !target) return null;
  const text = (b: Buffer) => (family === 'ipv4' ? [...b].join('.') : netfilter.formatIPv6(b));
  const destination = hostAddress(text(daddr));
  const to = hostAddress(text(target[0]));
  if (!destination || !to) return null;
  return [`${destination} ${dport}`, `${to}:${target[1] ?? dport}`];
}

/** The same from nodenet's nf_tables table: its nat chains are named `nat-NODENET-*`. */
async function nftUdpDnats(family: IpFamily, netns: string | undefined): Promise<UdpDnats> {
  const dump = await kernelCall(native().nftDump({ family: family === 'ipv4' ? 2 : 10, table: NFT_TABLE, rules: true }, netns));
  const out: UdpDnats = new Map();
  for (const rule of dump.rules) {
    if (!rule.chain.startsWith(`nat-${netfilter.OWNED_PREFIX}`)) continue;
    const entry = nftUdpDnat(rule.exprs, family);
    if (entry) out.set(entry[0], entry[1]);
  }
  return out;
}
