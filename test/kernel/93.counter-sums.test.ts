// The addon sums rule counters itself (tableCounterSums for legacy iptables, nftDump's counterSums
// for nftables), so a /metrics scrape never decodes nodenet's rules on the event loop. With real
// UDP traffic over loopback in a namespace, the sums equal what iptables-legacy-save -c and
// nft -j show for exactly the acting rules (DROP, DNAT, CT --notrack / drop, dnat, notrack), the
// MARK and ACCEPT rules the same packets passed are left out, and readMatchedCounters gives what
// decoding every rule in JavaScript gave before.
import t from 'tap';

import { readMatchedCounters, featureOfChain, type MatchedCounter } from '../../lib/controller/node-fixes/metrics.js';
import { isKernelError, kernelCall } from '../../lib/kernel/errors.js';
import { netfilter } from '../../lib/kernel/index.js';
import { NFT_TABLE } from '../../lib/kernel/netfilter/detect.js';
import { OWNED_PREFIX } from '../../lib/kernel/netfilter/index.js';
import { native } from '../../lib/kernel/native.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

const NF_DROP = 0;
const ACTING_TARGETS = ['DROP', 'DNAT', 'CT'];

/**
 * Sends `count` UDP datagrams of `size` bytes to 127.0.0.1:port from inside the namespace, each from
 * a socket of its own: a new flow each, so the nat table (which sees only a flow's first packet)
 * counts every one.
 */
async function sendUdp(ns: TestNetns, port: number, count: number, size = 10): Promise<void> {
  const script = `const dgram = require('node:dgram'); let n = ${count};
    const next = () => { if (n-- === 0) return; const s = dgram.createSocket('udp4');
      s.send(Buffer.alloc(${size}), ${port}, '127.0.0.1', () => { s.close(); next(); }); }; next();`;
  await ns.exec(process.execPath, ['-e', script]);
}

async function traffic(ns: TestNetns): Promise<void> {
  await sendUdp(ns, 9, 3); // dropped: drop-invalid
  await sendUdp(ns, 10, 2, 20); // MARK, then ACCEPT: nothing acts
  await sendUdp(ns, 11, 4, 30); // MARK, then DNAT: external-cluster
  await sendUdp(ns, 53, 5, 40); // CT --notrack, then ACCEPT: notrack-dns
  await sendUdp(ns, 14, 2); // dropped in a chain that is not nodenet's
}

type Totals = Map<string, { packets: bigint; bytes: bigint }>;

/** The totals in chain order, for comparing regardless of the order tables were listed in. */
function byChain(totals: Totals): Array<[string, { packets: bigint; bytes: bigint }]> {
  return [...totals].sort(([a], [b]) => a.localeCompare(b));
}

function add(totals: Totals, chain: string, packets: bigint, bytes: bigint): void {
  const total = totals.get(chain) ?? { packets: 0n, bytes: 0n };
  totals.set(chain, { packets: total.packets + packets, bytes: total.bytes + bytes });
}

const LEGACY_RULES = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:NODENET-DNS-NOTRACK - [0:0]
-A OUTPUT -j NODENET-DNS-NOTRACK
-A NODENET-DNS-NOTRACK -p udp -m udp --dport 53 -j CT --notrack
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:NODENET-EXTERNAL-HOST - [0:0]
-A OUTPUT -j NODENET-EXTERNAL-HOST
-A NODENET-EXTERNAL-HOST -p udp -m udp --dport 11 -j MARK --set-xmark 0x4000/0x4000
-A NODENET-EXTERNAL-HOST -p udp -m udp --dport 11 -j DNAT --to-destination 127.0.0.1:12
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:NODENET-DNS-ACCEPT - [0:0]
:NODENET-DROP-INVALID - [0:0]
:NODENET-UNUSED - [0:0]
:OTHER - [0:0]
-A OUTPUT -j NODENET-DNS-ACCEPT
-A OUTPUT -j NODENET-DROP-INVALID
-A OUTPUT -j OTHER
-A NODENET-DNS-ACCEPT -p udp -m udp --dport 53 -j ACCEPT
-A NODENET-DROP-INVALID -p udp -m udp --dport 9 -j DROP
-A NODENET-DROP-INVALID -p udp -m udp --dport 10 -j MARK --set-xmark 0x1/0xffffffff
-A NODENET-DROP-INVALID -p udp -m udp --dport 10 -j ACCEPT
-A OTHER -p udp -m udp --dport 14 -j DROP
COMMIT
`;

/** Per nodenet chain, the acting rules' counters as iptables-legacy-save -c prints them. */
async function legacyWitness(ns: TestNetns): Promise<{ acting: Totals; passive: Totals }> {
  const acting: Totals = new Map();
  const passive: Totals = new Map();
  for (const line of (await ns.exec('iptables-legacy-save', ['-c'])).split('\n')) {
    const chainLine = /^:(\S+) /.exec(line);
    if (chainLine?.[1]?.startsWith(OWNED_PREFIX)) add(acting, chainLine[1], 0n, 0n);
    const m = /^\[(\d+):(\d+)\] -A (\S+) .* -j (\S+)/.exec(line);
    if (!m || !m[3]!.startsWith(OWNED_PREFIX)) continue;
    add(ACTING_TARGETS.includes(m[4]!) ? acting : passive, m[3]!, BigInt(m[1]!), BigInt(m[2]!));
  }
  return { acting, passive };
}

/** readMatchedCounters for legacy iptables as it was: every rule decoded in JavaScript. */
async function legacyDecoded(netns: string): Promise<MatchedCounter[]> {
  const totals = new Map<string, MatchedCounter>();
  const where = { family: 'ipv4' as const, netns };
  const existing = await netfilter.tables(where);
  for (const name of ['filter', 'nat', 'raw'].filter((n) => existing.includes(n))) {
    for (const chain of (await netfilter.read({ ...where, table: name })).chains) {
      const feature = featureOfChain(chain.name);
      if (!feature) continue;
      const total = totals.get(feature) ?? { feature, family: 'ipv4', packets: 0n, bytes: 0n };
      for (const rule of chain.rules) {
        const target = rule.target;
        const acts = (target.kind === 'verdict' && target.verdict === 'DROP') || (target.kind === 'extension' && (target.name === 'DNAT' || target.name === 'CT'));
        if (!acts) continue;
        total.packets += rule.counters.packets;
        total.bytes += rule.counters.bytes;
      }
      totals.set(feature, total);
    }
  }
  return [...totals.values()];
}

t.test('iptables-legacy: tableCounterSums adds up exactly the acting rules', async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('iptables-legacy-restore', [], LEGACY_RULES);
  await traffic(ns);

  const { acting, passive } = await legacyWitness(ns);
  t.equal(passive.get('NODENET-DROP-INVALID')?.packets, 2n * 2n, 'the MARK and ACCEPT rules saw their packets');
  t.equal(passive.get('NODENET-DNS-ACCEPT')?.packets, 5n, 'the DNS ACCEPT rule saw the untracked packets');

  const got: Totals = new Map();
  for (const table of ['filter', 'nat', 'raw']) {
    for (const sum of await native().tableCounterSums(4, table, OWNED_PREFIX, ACTING_TARGETS, ns.path)) add(got, sum.chain, sum.packets, sum.bytes);
  }
  t.same(byChain(got), byChain(acting), 'per chain, what iptables-legacy-save -c shows for the DROP, DNAT and CT rules');
  t.same(got.get('NODENET-DROP-INVALID'), { packets: 3n, bytes: 3n * 38n }, 'three 38-byte drops');
  t.same(got.get('NODENET-EXTERNAL-HOST')?.packets, 4n, 'the DNAT rule, not its MARK');
  t.same(got.get('NODENET-DNS-NOTRACK')?.packets, 5n);
  t.same(got.get('NODENET-DNS-ACCEPT'), { packets: 0n, bytes: 0n }, 'a chain with no acting rule is listed, with nothing');
  t.same(got.get('NODENET-UNUSED'), { packets: 0n, bytes: 0n }, 'an empty chain is listed');
  t.notOk(got.has('OTHER'), "a chain outside the prefix is not read, though its DROP matched");

  const filter = await native().tableCounterSums(4, 'filter', OWNED_PREFIX, ACTING_TARGETS, ns.path);
  t.same(filter.find((s) => s.chain === 'NODENET-DROP-INVALID')?.rules, 1, 'rules counts the acting rules only');
  t.same(await native().tableCounterSums(6, 'filter', OWNED_PREFIX, ACTING_TARGETS, ns.path), [], 'a table that does not exist gives nothing');
  t.same(await native().tableCounterSums(4, 'mangle', OWNED_PREFIX, ACTING_TARGETS, ns.path), [], 'nor is it created');
  t.notOk((await netfilter.tables({ family: 'ipv4', netns: ns.path })).includes('mangle'));

  const matched = await readMatchedCounters(['ipv4', 'ipv6'], ns.path, 'iptables-legacy');
  t.same(matched, await legacyDecoded(ns.path), 'readMatchedCounters: the same totals as decoding every rule');
  t.same(
    matched.map((c) => [c.feature, c.family, c.packets]),
    [
      ['notrack-dns', 'ipv4', 5n],
      ['drop-invalid', 'ipv4', 3n],
      ['external-cluster', 'ipv4', 4n],
    ],
    'ipv6 has no tables and adds nothing',
  );
});

const NFT_RULES = `table ip ${NFT_TABLE} {
  chain raw-output { type filter hook output priority -300; policy accept; jump raw-NODENET-DNS-NOTRACK; }
  chain raw-NODENET-DNS-NOTRACK { udp dport 53 counter notrack; }
  chain nat-output { type nat hook output priority -100; policy accept; jump nat-NODENET-EXTERNAL-HOST; }
  chain nat-NODENET-EXTERNAL-HOST {
    udp dport 11 counter meta mark set 0x4000;
    udp dport 11 counter dnat to 127.0.0.1:12;
  }
  chain filter-output {
    type filter hook output priority 0; policy accept;
    jump filter-NODENET-DNS-ACCEPT; jump filter-NODENET-DROP-INVALID; jump other;
  }
  chain filter-NODENET-DNS-ACCEPT { udp dport 53 counter accept; }
  chain filter-NODENET-DROP-INVALID {
    udp dport 9 counter drop;
    udp dport 10 counter meta mark set 0x1;
    udp dport 10 counter accept;
    udp dport 13 drop;
  }
  chain other { udp dport 14 counter drop; }
}
`;

interface NftJsonRule {
  chain: string;
  expr: Array<Record<string, unknown>>;
}

/** Per chain, the acting rules' counters as nft -j lists them. */
async function nftWitness(ns: TestNetns): Promise<{ acting: Totals; passive: Totals }> {
  const listed = JSON.parse(await ns.exec('nft', ['-j', 'list', 'table', 'ip', NFT_TABLE])) as { nftables: Array<{ rule?: NftJsonRule }> };
  const acting: Totals = new Map();
  const passive: Totals = new Map();
  for (const { rule } of listed.nftables) {
    if (!rule) continue;
    add(acting, rule.chain, 0n, 0n);
    const counter = rule.expr.find((e) => 'counter' in e)?.counter as { packets: number; bytes: number } | undefined;
    const acts = rule.expr.some((e) => 'dnat' in e || 'snat' in e || 'notrack' in e || 'drop' in e);
    if (counter) add(acts ? acting : passive, rule.chain, BigInt(counter.packets), BigInt(counter.bytes));
  }
  return { acting, passive };
}

/** readMatchedCounters for nftables as it was: every rule decoded into JavaScript objects. */
async function nftDecoded(netns: string): Promise<MatchedCounter[]> {
  const totals = new Map<string, MatchedCounter>();
  const dump = await kernelCall(native().nftDump({ family: 2, table: NFT_TABLE, rules: true }, netns));
  for (const rule of dump.rules) {
    const owned = rule.chain.indexOf(OWNED_PREFIX);
    const feature = owned > 0 ? featureOfChain(rule.chain.slice(owned)) : undefined;
    if (!feature) continue;
    const total = totals.get(feature) ?? { feature, family: 'ipv4', packets: 0n, bytes: 0n };
    totals.set(feature, total);
    const acts = rule.exprs.some((e) => e.name === 'nat' || e.name === 'notrack' || (e.name === 'immediate' && e.verdict === NF_DROP));
    const counter = rule.exprs.find((e) => e.name === 'counter');
    if (!acts || !counter) continue;
    total.packets += counter.packets as bigint;
    total.bytes += counter.bytes as bigint;
  }
  return [...totals.values()];
}

t.test('nftables: nftDump counterSums adds up exactly the acting rules', async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('nft', ['-f', '-'], NFT_RULES);
  await traffic(ns);

  const { acting, passive } = await nftWitness(ns);
  t.equal(passive.get('filter-NODENET-DROP-INVALID')?.packets, 2n * 2n, 'the mark and accept rules saw their packets');
  t.equal(passive.get('filter-NODENET-DNS-ACCEPT')?.packets, 5n);

  const dump = await native().nftDump({ family: 2, table: NFT_TABLE, counterSums: { actingExprs: ['nat', 'notrack'], actingVerdicts: [NF_DROP] } }, ns.path);
  t.same(dump.rules, [], 'no rules cross to JavaScript');
  t.ok(dump.generation > 0 && dump.chains.length === 8, 'the generation, tables and chains still do');
  const got: Totals = new Map();
  for (const sum of dump.sums ?? []) {
    t.equal(sum.family, 2);
    t.equal(sum.table, NFT_TABLE);
    add(got, sum.chain, sum.packets, sum.bytes);
  }
  t.same(byChain(got), byChain(acting), 'per chain, what nft -j lists for the drop, dnat and notrack rules');
  t.same(got.get('filter-NODENET-DROP-INVALID'), { packets: 3n, bytes: 3n * 38n }, 'three 38-byte drops');
  t.equal(got.get('nat-NODENET-EXTERNAL-HOST')?.packets, 4n, 'the dnat rule, not its mark');
  t.equal(got.get('raw-NODENET-DNS-NOTRACK')?.packets, 5n);
  t.equal(got.get('other')?.packets, 2n, 'every chain of the table is summed; the caller picks');
  t.same(got.get('filter-NODENET-DNS-ACCEPT'), { packets: 0n, bytes: 0n }, 'a chain with no acting rule is listed, with nothing');
  t.equal(dump.sums?.find((s) => s.chain === 'filter-NODENET-DROP-INVALID')?.rules, 1, 'an acting rule without a counter is not counted');
  t.equal(dump.sums?.find((s) => s.chain === 'filter-output')?.rules, 0, 'a jump is not a drop');

  const plain = await native().nftDump({ family: 2, table: NFT_TABLE, rules: true }, ns.path);
  t.equal(plain.sums, undefined, 'without counterSums, no sums');
  t.equal(plain.rules.length, 14);

  const matched = await readMatchedCounters(['ipv4', 'ipv6'], ns.path, 'nftables');
  t.same(matched, await nftDecoded(ns.path), 'readMatchedCounters: the same totals as decoding every rule');
  t.same(
    matched.map((c) => [c.feature, c.family, c.packets]),
    [
      ['notrack-dns', 'ipv4', 5n],
      ['external-cluster', 'ipv4', 4n],
      ['drop-invalid', 'ipv4', 3n],
    ],
    'ipv6 has no table and adds nothing',
  );
});

t.test('bad requests and a missing namespace', async (t) => {
  const missing = '/var/run/netns/nnt-does-not-exist';
  for (const [backend, op] of [
    ['iptables-legacy', 'netfilter.counterSums'],
    ['nftables', 'nft.dump'],
  ] as const) {
    const error: unknown = await readMatchedCounters(['ipv4'], missing, backend).catch((e: unknown) => e);
    t.ok(isKernelError(error), `${backend}: a KernelError`);
    if (isKernelError(error)) {
      t.equal(error.op, op);
      t.equal(error.netns, missing);
      t.equal(error.code, 'ENOENT');
    }
  }
  t.throws(() => native().tableCounterSums(5 as 4, 'filter', OWNED_PREFIX, []), TypeError);
  t.throws(() => native().tableCounterSums(4, 'filter', OWNED_PREFIX, 'DROP' as unknown as string[]), /actingTargets must be an array/);
  t.throws(() => native().nftDump({ counterSums: { actingExprs: [1 as unknown as string], actingVerdicts: [] } }), /actingExprs\[0\] must be a string/);
  t.throws(() => native().nftDump({ counterSums: { actingExprs: [], actingVerdicts: [2 ** 40] } }), RangeError);
});
