// Planning one legacy table's part of nodenet's nft table: from a dump and the wanted chains to the
// ops of one batch and the change lines. The dumps here hold exactly what the encoder writes, which
// is what the kernel echoes (test/kernel/97.nft-backend.test.ts proves that part).
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import type { RawNftChain, RawNftDump, RawNftOp, RawNftRule } from '../../lib/kernel/native.js';
import { wantedChains } from '../../lib/kernel/netfilter/nft/backend.js';
import type { NftRule } from '../../lib/kernel/netfilter/nft/encode.js';
import { baseChainSpec, isChainOf } from '../../lib/kernel/netfilter/nft/layout.js';
import { planNft } from '../../lib/kernel/netfilter/nft/plan.js';
import type { TableState } from '../../lib/kernel/netfilter/spec.js';

const PREFIX = 'NODENET-';

interface KernelChain {
  name: string;
  family?: number;
  table?: string;
  base?: { hook: number; priority: number; type: string; policy: number };
  rules: NftRule[];
}

/** A dump of what the kernel would hold; rule handles count up from 100 in order. */
function dumpOf(chains: KernelChain[], tables: Array<{ family: number; name: string }> = [{ family: 2, name: 'nodenet' }]): RawNftDump {
  let handle = 100n;
  const rawChains: RawNftChain[] = [];
  const rules: RawNftRule[] = [];
  for (const c of chains) {
    const family = c.family ?? 2;
    const table = c.table ?? 'nodenet';
    rawChains.push({ family, table, name: c.name, handle: handle++, hook: c.base?.hook ?? null, priority: c.base?.priority ?? null, type: c.base?.type ?? null, policy: c.base?.policy ?? null, userdata: null });
    for (const r of c.rules) rules.push({ family, table, chain: c.name, handle: handle++, userdata: r.userdata, exprs: r.exprs.map((e) => (e.name === 'counter' ? { ...e, packets: 7n, bytes: 700n } : e)) });
  }
  return { generation: 42, netnsCookie: 1n, tables: tables.map((x) => ({ ...x, handle: 1n, flags: 0, userdata: null })), chains: rawChains, rules };
}

const natState = (externalRules = 2): TableState => ({
  family: 'ipv4',
  table: 'nat',
  chains: [
    {
      name: 'NODENET-EXTERNAL-PODS',
      rules: [
        b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.orMark(0x4000)),
        b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.dnat('10.96.0.10', 80)),
        b.rule({ source: '10.244.0.0/16', destination: '203.0.113.11', protocol: 'tcp' }, [b.comment('shop/api'), b.tcp({ dport: 443 })], b.dnat('10.96.0.11', 443)),
      ].slice(0, externalRules),
    },
  ],
  jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [b.comment('nodenet: external IPs')], b.jump('NODENET-EXTERNAL-PODS')) }],
});

/** What the kernel holds after a previous apply of `state`. */
function applied(state: TableState): KernelChain[] {
  return wantedChains(state, PREFIX).map((w) => ({ name: w.name, ...(w.base ? { base: w.base } : {}), rules: w.rules }));
}

const plan = (state: TableState, dump: RawNftDump) => planNft({ family: state.family, table: state.table, ownedPrefix: PREFIX, wanted: wantedChains(state, PREFIX), dump });
const summary = (ops: RawNftOp[]) =>
  ops.map((o) => {
    switch (o.op) {
      case 'addRule':
        return `addRule ${o.chain}${o.position !== undefined ? ` after ${o.position}` : ''}`;
      case 'deleteRule':
        return `deleteRule ${o.chain} ${o.handle}`;
      case 'addChain':
        return `addChain ${o.chain}${o.hook !== undefined ? ` hook ${o.hook} prio ${o.priority} ${o.type}` : ''}`;
      case 'addTable':
      case 'deleteTable':
        return `${o.op} ${o.family} ${o.table}`;
      default:
        return `${o.op} ${o.chain}`;
    }
  });

t.test('layout: names, hooks, priorities, types', async (t) => {
  t.same(baseChainSpec('raw', 'PREROUTING'), { hook: 0, priority: -310, type: 'filter', policy: 1 });
  t.same(baseChainSpec('mangle', 'OUTPUT'), { hook: 3, priority: -160, type: 'route', policy: 1 });
  t.same(baseChainSpec('mangle', 'FORWARD'), { hook: 2, priority: -160, type: 'filter', policy: 1 });
  t.same(baseChainSpec('nat', 'PREROUTING'), { hook: 0, priority: -110, type: 'nat', policy: 1 });
  t.same(baseChainSpec('nat', 'OUTPUT'), { hook: 3, priority: -110, type: 'nat', policy: 1 });
  t.same(baseChainSpec('nat', 'INPUT'), { hook: 1, priority: 90, type: 'nat', policy: 1 });
  t.same(baseChainSpec('nat', 'POSTROUTING'), { hook: 4, priority: 90, type: 'nat', policy: 1 });
  t.same(baseChainSpec('filter', 'FORWARD'), { hook: 2, priority: -10, type: 'filter', policy: 1 });
  t.same(baseChainSpec('security', 'OUTPUT'), { hook: 3, priority: 40, type: 'filter', policy: 1 });
  t.equal(baseChainSpec('filter', 'PREROUTING'), null);
  t.ok(isChainOf('nat', 'nat-prerouting', PREFIX));
  t.ok(isChainOf('nat', 'nat-NODENET-X', PREFIX));
  t.notOk(isChainOf('nat', 'filter-NODENET-X', PREFIX));
  t.notOk(isChainOf('nat', 'nat-forward', PREFIX), 'nat has no FORWARD');
  t.notOk(isChainOf('nat', 'nat-mine', PREFIX), 'not owned, not a builtin');
  t.notOk(isChainOf('filter', 'filterx-input', PREFIX));
});

t.test('from nothing: table, chains, then rules; jumps target the T-prefixed chains', async (t) => {
  const state = natState();
  const p = plan(state, dumpOf([], []));
  t.same(summary(p.ops), [
    'addTable 2 nodenet',
    'addChain nat-prerouting hook 0 prio -110 nat',
    'addChain nat-NODENET-EXTERNAL-PODS',
    'addRule nat-prerouting',
    'addRule nat-NODENET-EXTERNAL-PODS',
    'addRule nat-NODENET-EXTERNAL-PODS',
  ]);
  t.same(p.changes, [
    '+ table ip nodenet',
    '+ chain ip nodenet nat-prerouting { type nat hook prerouting priority -110; policy accept; }',
    '+ chain ip nodenet nat-NODENET-EXTERNAL-PODS',
    '+ nat-prerouting: counter jump nat-NODENET-EXTERNAL-PODS comment "nodenet: external IPs"',
    '+ nat-NODENET-EXTERNAL-PODS: ip saddr 10.244.0.0/16 ip daddr 203.0.113.10 tcp dport 80 counter meta mark set meta mark | 0x00004000 comment "shop/web"',
    '+ nat-NODENET-EXTERNAL-PODS: ip saddr 10.244.0.0/16 ip daddr 203.0.113.10 tcp dport 80 counter dnat to 10.96.0.10:80 comment "shop/web"',
  ]);
  const add = p.ops.find((o) => o.op === 'addRule' && o.chain === 'nat-prerouting');
  t.match(add, { exprs: [{ name: 'counter' }, { name: 'immediate', verdict: -3, chain: 'nat-NODENET-EXTERNAL-PODS' }] });
  const none = plan({ ...state, chains: [], jumps: [] }, dumpOf([], []));
  t.same({ ops: none.ops, changes: none.changes }, { ops: [], changes: [] }, 'an empty state where nothing is: nothing, not even a table');
});

t.test('nothing differs: no ops, whatever the counters say', async (t) => {
  const state = natState();
  const p = plan(state, dumpOf(applied(state)));
  t.same({ ops: p.ops, changes: p.changes }, { ops: [], changes: [] });
});

t.test('a rule added at the end: inserted after the last kept rule, counters of the rest kept', async (t) => {
  const before = applied(natState(2));
  const p = plan(natState(3), dumpOf(before));
  // Handles: base chain 100, its rule 101; chain 102, rules 103, 104.
  t.same(summary(p.ops), ['addRule nat-NODENET-EXTERNAL-PODS after 104']);
  t.same(p.changes, ['+ nat-NODENET-EXTERNAL-PODS: ip saddr 10.244.0.0/16 ip daddr 203.0.113.11 tcp dport 443 counter dnat to 10.96.0.11:443 comment "shop/api"']);
});

t.test('a rule changed in the middle: deleted by handle, the new one inserted in its place', async (t) => {
  const state = natState(3);
  const before = applied(state);
  const changed = structuredClone(state);
  changed.chains[0]!.rules[1] = b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.dnat('10.96.0.99', 80));
  const p = plan(changed, dumpOf(before));
  t.same(summary(p.ops), ['deleteRule nat-NODENET-EXTERNAL-PODS 104', 'addRule nat-NODENET-EXTERNAL-PODS after 103']);
  t.same(p.changes, [
    '- nat-NODENET-EXTERNAL-PODS: ip saddr 10.244.0.0/16 ip daddr 203.0.113.10 tcp dport 80 counter dnat to 10.96.0.10:80 comment "shop/web"',
    '+ nat-NODENET-EXTERNAL-PODS: ip saddr 10.244.0.0/16 ip daddr 203.0.113.10 tcp dport 80 counter dnat to 10.96.0.99:80 comment "shop/web"',
  ]);
  const two = structuredClone(state);
  two.chains[0]!.rules.splice(1, 1, b.rule({}, [], b.accept()), b.rule({}, [], b.drop()));
  t.same(summary(plan(two, dumpOf(before)).ops), ['deleteRule nat-NODENET-EXTERNAL-PODS 104', 'addRule nat-NODENET-EXTERNAL-PODS after 103', 'addRule nat-NODENET-EXTERNAL-PODS after 103'], 'several: last first, all after the anchor');
  const inserted = plan(two, dumpOf(before)).ops.filter((o) => o.op === 'addRule').map((o) => (o.op === 'addRule' ? o.exprs.at(-1)?.verdict : null));
  t.same(inserted, [0, 1], 'drop inserted first, then accept before it');
});

t.test('a new first rule before kept ones: the chain is rewritten (no insert-at-top op)', async (t) => {
  const state = natState(2);
  const before = applied(state);
  const front = structuredClone(state);
  front.chains[0]!.rules.unshift(b.rule({}, [], b.returnTarget()));
  const p = plan(front, dumpOf(before));
  t.same(summary(p.ops), ['flushChain nat-NODENET-EXTERNAL-PODS', 'addRule nat-NODENET-EXTERNAL-PODS', 'addRule nat-NODENET-EXTERNAL-PODS', 'addRule nat-NODENET-EXTERNAL-PODS']);
  t.same(p.changes, ['+ nat-NODENET-EXTERNAL-PODS: counter return'], 'the change lines say what differs, not how');
  const dropFirst = structuredClone(state);
  dropFirst.chains[0]!.rules.shift();
  t.same(summary(plan(dropFirst, dumpOf(before)).ops), ['deleteRule nat-NODENET-EXTERNAL-PODS 103'], 'only removing at the top needs no rewrite');
  const replaceAll = structuredClone(state);
  replaceAll.chains[0]!.rules = [b.rule({}, [], b.accept())];
  t.same(summary(plan(replaceAll, dumpOf(before)).ops), ['flushChain nat-NODENET-EXTERNAL-PODS', 'addRule nat-NODENET-EXTERNAL-PODS'], 'nothing kept: one flush');
});

t.test('a chain no longer wanted: the jumps to it go first, then it is emptied and deleted', async (t) => {
  const state: TableState = {
    family: 'ipv4',
    table: 'filter',
    chains: [
      { name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.ctstate(['INVALID'])], b.drop())] },
      { name: 'NODENET-DNS-ACCEPT', rules: [b.rule({ protocol: 'udp' }, [b.ctstate(['UNTRACKED']), b.udp({ dport: 53 })], b.accept())] },
    ],
    jumps: [
      { chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DROP-INVALID')) },
      { chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-ACCEPT')) },
      { chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-ACCEPT')) },
    ],
  };
  const before = applied(state);
  const without: TableState = { ...state, chains: [state.chains[0]!], jumps: [state.jumps[0]!] };
  const p = plan(without, dumpOf(before));
  t.same(summary(p.ops), ['deleteRule filter-input 102', 'flushChain filter-output', 'flushChain filter-NODENET-DNS-ACCEPT', 'deleteChain filter-output', 'deleteChain filter-NODENET-DNS-ACCEPT']);
  t.same(p.changes, [
    '- filter-input: counter jump filter-NODENET-DNS-ACCEPT',
    '- chain ip nodenet filter-output { type filter hook output priority -10; policy accept; }',
    '- chain ip nodenet filter-NODENET-DNS-ACCEPT',
  ]);
});

t.test("only this legacy table's chains: others' and foreign ones stay, and keep the table alive", async (t) => {
  const nat = natState();
  const filter: TableState = { family: 'ipv4', table: 'filter', chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.ctstate(['INVALID'])], b.drop())] }], jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DROP-INVALID')) }] };
  const kernel = [...applied(nat), ...applied(filter)];
  const p = plan({ ...nat, chains: [], jumps: [] }, dumpOf(kernel));
  t.same(summary(p.ops), ['flushChain nat-prerouting', 'flushChain nat-NODENET-EXTERNAL-PODS', 'deleteChain nat-prerouting', 'deleteChain nat-NODENET-EXTERNAL-PODS'], 'filter-* stay; the table stays');
  const withForeign = dumpOf([...applied(nat), { name: 'someone-elses', rules: [] }]);
  t.notOk(plan({ ...nat, chains: [], jumps: [] }, withForeign).ops.some((o) => o.op === 'deleteTable'), 'a chain nodenet does not know keeps the table');
  t.same(plan(filter, dumpOf([...kernel, { name: 'nat-NODENET-EXTERNAL-PODS', family: 10, rules: [] }], [{ family: 2, name: 'nodenet' }, { family: 10, name: 'nodenet' }])).ops, [], 'the other family is another table');
});

t.test('the last chains of the table: the table goes in one op', async (t) => {
  const nat = natState();
  const p = plan({ ...nat, chains: [], jumps: [] }, dumpOf(applied(nat)));
  t.same(summary(p.ops), ['deleteTable 2 nodenet']);
  t.same(p.changes, ['- chain ip nodenet nat-prerouting { type nat hook prerouting priority -110; policy accept; }', '- chain ip nodenet nat-NODENET-EXTERNAL-PODS', '- table ip nodenet']);
  t.same(summary(plan({ ...nat, chains: [], jumps: [] }, dumpOf([])).ops), ['deleteTable 2 nodenet'], 'an empty table left behind goes too');
});

t.test('a base chain at another priority (an older layout) is replaced', async (t) => {
  const nat = natState();
  const kernel = applied(nat).map((c) => (c.base ? { ...c, base: { ...c.base, priority: -100 } } : c));
  const p = plan(nat, dumpOf(kernel));
  t.same(summary(p.ops), ['flushChain nat-prerouting', 'deleteChain nat-prerouting', 'addChain nat-prerouting hook 0 prio -110 nat', 'addRule nat-prerouting']);
  t.same(p.changes, [
    '- chain ip nodenet nat-prerouting { type nat hook prerouting priority -100; policy accept; }',
    '+ chain ip nodenet nat-prerouting { type nat hook prerouting priority -110; policy accept; }',
    '+ nat-prerouting: counter jump nat-NODENET-EXTERNAL-PODS comment "nodenet: external IPs"',
  ]);
});

t.test('IPv6 plans into ip6 nodenet', async (t) => {
  const v6: TableState = { family: 'ipv6', table: 'raw', chains: [{ name: 'NODENET-DNS-NOTRACK', rules: [b.rule({ destination: 'fd00:10:96::a', protocol: 'udp' }, [b.udp({ dport: 53 })], b.notrack())] }], jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-NOTRACK')) }] };
  const p = plan(v6, dumpOf([], []));
  t.same(summary(p.ops), ['addTable 10 nodenet', 'addChain raw-output hook 3 prio -310 filter', 'addChain raw-NODENET-DNS-NOTRACK', 'addRule raw-output', 'addRule raw-NODENET-DNS-NOTRACK']);
  t.equal(p.changes[4], '+ raw-NODENET-DNS-NOTRACK: ip6 daddr fd00:10:96::a udp dport 53 counter notrack');
  t.same(plan(v6, dumpOf([], [{ family: 2, name: 'nodenet' }])).ops[0], { op: 'addTable', family: 10, table: 'nodenet' }, 'ip nodenet existing does not make ip6 nodenet');
});
