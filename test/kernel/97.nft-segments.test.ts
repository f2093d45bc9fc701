// Long owned chains in segments: the nft table holds the parent as a list of jumps and the rules in
// segment chains, which read in order are exactly the chain asked for; an edit touches one segment
// (the kernel rebuilds only the chains a batch touches), a chain that returns or goes to stays flat,
// and a chain that shrinks below the threshold is flat again with its segments gone.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import { deepFreeze } from '../../lib/kernel/netfilter/frozen.js';
import { applyNft, diffNft, forgetNftViews } from '../../lib/kernel/netfilter/nft/backend.js';
import { segmentParent } from '../../lib/kernel/netfilter/nft/layout.js';
import { SEGMENT_FROM } from '../../lib/kernel/netfilter/nft/segments.js';
import type { RuleSpec, TableState } from '../../lib/kernel/netfilter/spec.js';
import { readMatchedCounters } from '../../lib/controller/node-fixes/metrics.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

const PARENT = 'nat-NODENET-EXTERNAL-PODS';

const rule = (i: number, port = 80): RuleSpec =>
  b.rule({ source: '10.244.0.0/16', destination: `198.18.${(i >> 8) & 255}.${i & 255}`, protocol: 'tcp' }, [b.comment(`ns/svc-${i}`), b.tcp({ dport: port })], b.dnat(`10.96.${(i >> 8) & 255}.${i & 255}`, port));

function state(rules: RuleSpec[]): TableState {
  return deepFreeze({
    family: 'ipv4',
    table: 'nat',
    chains: [{ name: 'NODENET-EXTERNAL-PODS', rules }],
    jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-EXTERNAL-PODS')) }],
  });
}

/** Every chain of nodenet's ip table: its rule lines as nft lists them, counters left out. */
async function chains(ns: TestNetns): Promise<Map<string, string[]>> {
  const out = await ns.exec('nft', ['list', 'table', 'ip', 'nodenet']);
  const m = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const raw of out.split('\n')) {
    const line = raw.trim();
    const open = /^chain (\S+) \{$/.exec(line);
    if (open) m.set(open[1]!, (current = []));
    else if (current && line && line !== '}' && !line.startsWith('type ')) current.push(line.replace(/counter packets \d+ bytes \d+ ?/, ''));
  }
  return m;
}

/** The parent's rules as a packet walks them: each jump into a segment replaced by its rules. */
function walked(all: Map<string, string[]>, parent: string): string[] {
  return (all.get(parent) ?? []).flatMap((line) => {
    const jump = /^jump (\S+)$/.exec(line);
    return jump && segmentParent(jump[1]!) === parent ? (all.get(jump[1]!) ?? [`(missing ${jump[1]})`]) : [line];
  });
}

const expectedLine = (i: number, port = 80) =>
  `ip saddr 10.244.0.0/16 ip daddr 198.18.${(i >> 8) & 255}.${i & 255} tcp dport ${port} dnat to 10.96.${(i >> 8) & 255}.${i & 255}:${port} comment "ns/svc-${i}"`;

t.test('a long chain is held in segments that read as the chain, and an edit touches one', async (t) => {
  const ns = await makeNetns(t);
  const n = SEGMENT_FROM + 1000;
  const rules = Array.from({ length: n }, (_, i) => rule(i));
  await applyNft(state(rules), { netns: ns.path });
  let all = await chains(ns);
  const segments = [...all.keys()].filter((c) => segmentParent(c) === PARENT);
  t.ok(segments.length >= 4, `${segments.length} segments`);
  t.ok(all.get(PARENT)!.every((l) => /^jump nat-NODENET-EXTERNAL-PODS\.[0-9a-f]{8}(-\d+)?$/.test(l)), 'the parent holds only jumps into its segments');
  t.equal(all.get(PARENT)!.length, segments.length, 'one jump per segment');
  const lines = walked(all, PARENT);
  t.equal(lines.length, n, 'every rule once');
  t.same(lines.slice(0, 3), [0, 1, 2].map((i) => expectedLine(i)), 'in order from the first');
  t.same(lines.slice(-2), [n - 2, n - 1].map((i) => expectedLine(i)), 'to the last');
  t.ok(lines.every((l, i) => l === expectedLine(i)), 'every rule where the chain has it');

  // One rule in the middle changes: one segment's rules change, no chain is created or deleted.
  const edited = [...rules];
  edited[2500] = rule(2500, 8080);
  const r = await applyNft(state(edited), { netns: ns.path });
  const touched = new Set(r.changes.map((c) => /^[-+] (\S+):/.exec(c)?.[1]));
  t.equal(r.changes.length, 2, `one rule out, one in: ${r.changes.join(' | ')}`);
  t.equal(touched.size, 1, 'in one segment');
  t.equal(segmentParent([...touched][0]!), PARENT, "a segment of the chain, not the parent");
  all = await chains(ns);
  t.equal(walked(all, PARENT)[2500], expectedLine(2500, 8080), 'the walk sees the edit');

  // Rules inserted at the start: only the first segment changes (its name may too); the rest stay.
  const before = new Set([...all.keys()].filter((c) => segmentParent(c) === PARENT));
  const grown = [rule(90_000), ...edited];
  await applyNft(state(grown), { netns: ns.path });
  all = await chains(ns);
  const afterSegments = [...all.keys()].filter((c) => segmentParent(c) === PARENT);
  const kept = afterSegments.filter((c) => before.has(c));
  t.ok(kept.length >= afterSegments.length - 2, `an insertion at the top leaves the other segments as they were (${kept.length} of ${afterSegments.length} kept)`);
  t.equal(walked(all, PARENT)[0], expectedLine(90_000), 'the new rule first');
  t.equal(walked(all, PARENT).length, n + 1);

  forgetNftViews();
  t.same((await diffNft(state(grown), { netns: ns.path })).changes, [], 'a fresh read of the kernel finds nothing to change');

  // Shrunk below the threshold: flat again, the segments gone.
  const small = grown.slice(0, 100);
  await applyNft(state(small), { netns: ns.path });
  all = await chains(ns);
  t.same([...all.keys()].filter((c) => segmentParent(c) !== null), [], 'no segment left');
  t.same(all.get(PARENT), small.map((_, i) => (i === 0 ? expectedLine(90_000) : expectedLine(i - 1))), 'the chain flat, as asked');
});

t.test('a long chain with a return stays flat (a return in a segment would not leave the chain)', async (t) => {
  const ns = await makeNetns(t);
  const rules = Array.from({ length: SEGMENT_FROM + 10 }, (_, i) => rule(i));
  rules.splice(5, 0, b.rule({ source: '10.0.0.0/8' }, [], b.returnTarget()));
  await applyNft(state(rules), { netns: ns.path });
  const all = await chains(ns);
  t.same([...all.keys()].filter((c) => segmentParent(c) !== null), [], 'no segments');
  t.equal(all.get(PARENT)!.length, rules.length, 'every rule in the chain itself');
  t.equal(all.get(PARENT)![5], 'ip saddr 10.0.0.0/8 return');
});

t.test("the agent's matched-packet metrics count a segment's rules for its chain", async (t) => {
  const ns = await makeNetns(t);
  const udp = (i: number) => b.rule({ destination: '127.0.0.1', protocol: 'udp' }, [b.comment(`ns/udp-${i}`), b.udp({ dport: 20000 + i })], b.dnat('127.0.0.1', 20000 + i));
  const rules = Array.from({ length: SEGMENT_FROM + 100 }, (_, i) => udp(i));
  await applyNft(
    deepFreeze({ family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-EXTERNAL-PODS', rules }], jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-EXTERNAL-PODS')) }] }),
    { netns: ns.path },
  );
  t.ok([...(await chains(ns)).keys()].some((c) => segmentParent(c) === PARENT), 'the chain is segmented');
  const external = async () => (await readMatchedCounters(['ipv4'], ns.path, 'nftables')).find((c) => c.feature === 'external-cluster')?.packets;
  t.equal(await external(), 0n, 'nothing matched yet');
  // Two new flows to a port whose DNAT sits deep in a segment (the nat table counts first packets).
  const script = `const dgram = require('node:dgram'); let n = 2;
    const next = () => { if (n-- === 0) return; const s = dgram.createSocket('udp4');
      s.send(Buffer.alloc(8), ${20000 + 4000}, '127.0.0.1', () => { s.close(); next(); }); }; next();`;
  await ns.exec(process.execPath, ['-e', script]);
  t.equal(await external(), 2n, 'both counted for the external-cluster fix');
});
