// The nftables backend in the kernel: nodenet's part of each legacy table written into its own
// `ip nodenet` / `ip6 nodenet` table through the addon, witnessed with nft itself (`nft -j list`,
// `nft list`). What nodenet writes is what nft writes for the line nft prints for it (expression
// for expression, as dumped), the kernel echoes every attribute as written (so a second apply
// commits nothing), edits keep what they can, the table comes and goes with nodenet's chains, other
// tables are never touched, a concurrent writer costs a retry and nothing else, and bad input never
// reaches the kernel.
import { spawn } from 'node:child_process';

import t from 'tap';

import { native, type RawNftDump, type RawNftRule } from '../../lib/kernel/native.js';
import * as b from '../../lib/kernel/netfilter/build.js';
import { nftBackend } from '../../lib/kernel/netfilter/backend.js';
import { applyNft, diffNft, wantedChains } from '../../lib/kernel/netfilter/nft/backend.js';
import { ruleKey } from '../../lib/kernel/netfilter/nft/compare.js';
import { describeNftRule } from '../../lib/kernel/netfilter/nft/describe.js';
import type { TableState } from '../../lib/kernel/netfilter/spec.js';
import type { IpFamily } from '../../lib/kernel/netfilter/types.js';
import { RuleValidationError } from '../../lib/kernel/netfilter/validate.js';
import { applyOrder, render, type ModelInput } from '../../lib/model/index.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

const fam = (f: IpFamily) => (f === 'ipv4' ? 'ip' : 'ip6');
const nfproto = (f: IpFamily) => (f === 'ipv4' ? 2 : 10);

// ---- witnesses ---------------------------------------------------------------------------------

interface NftJsonChain {
  family: string;
  table: string;
  name: string;
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

interface NftJsonRule {
  family: string;
  table: string;
  chain: string;
  expr: Array<Record<string, unknown>>;
  comment?: string;
}

/** `nft -j list table`: chains and rules as nft's JSON gives them. */
async function nftJson(ns: TestNetns, family: IpFamily): Promise<{ chains: NftJsonChain[]; rules: NftJsonRule[] }> {
  const out = JSON.parse(await ns.exec('nft', ['-j', 'list', 'table', fam(family), 'nodenet'])) as { nftables: Array<Record<string, unknown>> };
  return {
    chains: out.nftables.flatMap((o) => (o.chain ? [o.chain as NftJsonChain] : [])),
    rules: out.nftables.flatMap((o) => (o.rule ? [o.rule as NftJsonRule] : [])),
  };
}

/** `nft list table`: each chain's rule lines (its `type ...` declaration apart). */
async function nftText(ns: TestNetns, family: IpFamily): Promise<Map<string, { decl: string | null; rules: string[] }>> {
  const out = await ns.exec('nft', ['list', 'table', fam(family), 'nodenet']);
  const chains = new Map<string, { decl: string | null; rules: string[] }>();
  let current: { decl: string | null; rules: string[] } | null = null;
  for (const raw of out.split('\n')) {
    const line = raw.trim();
    const open = /^chain (\S+) \{$/.exec(line);
    if (open) chains.set(open[1]!, (current = { decl: null, rules: [] }));
    else if (line === '}' || line === '' || line.startsWith('table ')) continue;
    else if (current && line.startsWith('type ')) current.decl = line;
    else current?.rules.push(line);
  }
  return chains;
}

async function nftTables(ns: TestNetns): Promise<string[]> {
  return (await ns.exec('nft', ['list', 'tables'])).split('\n').filter(Boolean).sort();
}

async function dumpOf(ns: TestNetns, family: IpFamily): Promise<RawNftDump> {
  return native().nftDump({ family: nfproto(family), table: 'nodenet' }, ns.path);
}

const byChain = (dump: RawNftDump) => {
  const m = new Map<string, RawNftRule[]>();
  for (const r of dump.rules) m.set(r.chain, [...(m.get(r.chain) ?? []), r]);
  return m;
};

// ---- goldens: one state per legacy table and family --------------------------------------------

const goldens: TableState[] = [
  {
    family: 'ipv4',
    table: 'nat',
    chains: [
      {
        name: 'NODENET-EXTERNAL-PODS',
        rules: [
          b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.orMark(0x4000)),
          b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.dnat('10.96.0.10', 80)),
          b.rule({ source: '10.244.7.9/20', protocol: 'udp' }, [b.udp({ sport: [1024, 65535], dport: 53 })], b.dnat('10.96.0.11')),
          b.rule({ destination: '203.0.113.10', protocol: 'sctp' }, [b.comment('shop/voice:sig'), b.sctp({ dport: 3868 })], b.dnat('10.96.0.30', 3868)),
          b.rule({ source: b.not('10.0.0.0/255.0.255.0') }, [b.mark(0x4000, 0x4000, true)], b.returnTarget()),
          b.rule({ protocol: 'tcp' }, [b.tcp({ sport: b.not([1, 2]) })], b.goTo('NODENET-MARK-MASQ')),
        ],
      },
      { name: 'NODENET-MARK-MASQ', rules: [b.rule({}, [], b.orMark(0x4000)), b.rule({ protocol: b.not('tcp') }, [], { kind: 'none' })] },
    ],
    jumps: [
      { chain: 'PREROUTING', rule: b.rule({}, [b.comment('nodenet: external IPs to cluster IPs')], b.jump('NODENET-EXTERNAL-PODS')) },
      { chain: 'OUTPUT', rule: b.rule({}, [b.addrtype({ src: ['LOCAL'] })], b.jump('NODENET-EXTERNAL-PODS')) },
      { chain: 'POSTROUTING', rule: b.rule({}, [b.mark(0x4000, 0x4000)], b.jump('NODENET-MARK-MASQ')) },
    ],
  },
  {
    family: 'ipv4',
    table: 'filter',
    chains: [
      { name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.comment('nodenet: conntrack INVALID, the node would answer with a RST'), b.ctstate(['INVALID'])], b.drop())] },
      {
        name: 'NODENET-DNS-ACCEPT',
        rules: [
          b.rule({ protocol: 'udp' }, [b.ctstate(['UNTRACKED']), b.udp({ dport: 53 })], b.accept()),
          b.rule({ protocol: 'udp' }, [b.ctstate(['UNTRACKED']), b.udp({ sport: 53 })], b.accept()),
          b.rule({ inInterface: 'veth+' }, [b.ctstate(b.not(['ESTABLISHED', 'RELATED'])), b.addrtype({ dst: b.not(['LOCAL']), limitIfaceIn: true })], { kind: 'none' }),
        ],
      },
    ],
    jumps: [
      { chain: 'INPUT', rule: b.rule({}, [b.comment('nodenet: drop INVALID')], b.jump('NODENET-DROP-INVALID')) },
      { chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-ACCEPT')) },
      { chain: 'FORWARD', rule: b.rule({}, [], b.jump('NODENET-DNS-ACCEPT')) },
      { chain: 'OUTPUT', rule: b.rule({ outInterface: b.not('lo') }, [b.ctstate(b.not(['NEW']))], b.jump('NODENET-DROP-INVALID')) },
    ],
  },
  {
    family: 'ipv4',
    table: 'raw',
    chains: [
      {
        name: 'NODENET-DNS-NOTRACK',
        rules: [
          b.rule({ destination: '10.96.0.10', protocol: 'udp' }, [b.comment('kube-system/kube-dns cluster IP'), b.udp({ dport: 53 })], b.notrack()),
          b.rule({ source: '10.244.1.5', protocol: 'udp' }, [b.comment('kube-system/kube-dns endpoint reply'), b.udp({ sport: 53 })], b.notrack()),
        ],
      },
    ],
    jumps: [
      { chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-DNS-NOTRACK')) },
      { chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-NOTRACK')) },
    ],
  },
  {
    family: 'ipv4',
    table: 'mangle',
    chains: [
      {
        name: 'NODENET-MARK',
        rules: [
          b.rule({ protocol: 'tcp' }, [b.tcp({ dport: [8000, 8080] })], b.setXMark(0x1, 0xff)),
          b.rule({}, [b.mark(0x10, 0xffffffff, true)], b.setXMark(0x20, 0xffffffff)),
        ],
      },
    ],
    jumps: [
      { chain: 'PREROUTING', rule: b.rule({ inInterface: 'eth+' }, [], b.jump('NODENET-MARK')) },
      { chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-MARK')) },
    ],
  },
  {
    family: 'ipv6',
    table: 'nat',
    chains: [
      {
        name: 'NODENET-EXTERNAL-PODS',
        rules: [
          b.rule({ source: 'fd00:10:244::/56', destination: '2001:db8::10', protocol: 'udp' }, [b.comment('kube-system/dns'), b.udp({ dport: 53 })], b.dnat('fd00:10:96::a', 53)),
          b.rule({ destination: '2001:db8::11', protocol: 'tcp' }, [b.tcp({ dport: 443 })], b.dnat('fd00:10:96::b')),
          b.rule({ protocol: b.not('ipv6-icmp'), inInterface: 'eth0' }, [b.mark(0x4000)], b.orMark(0x4000)),
        ],
      },
    ],
    jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-EXTERNAL-PODS')) }],
  },
  {
    family: 'ipv6',
    table: 'filter',
    chains: [
      {
        name: 'NODENET-DROP-INVALID',
        rules: [
          b.rule({ source: b.not('fd00::/60') }, [b.ctstate(['INVALID'])], b.drop()),
          b.rule({}, [b.addrtype({ dst: ['LOCAL'], limitIfaceIn: true })], b.accept()),
        ],
      },
    ],
    jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DROP-INVALID')) }],
  },
  {
    family: 'ipv6',
    table: 'raw',
    chains: [{ name: 'NODENET-DNS-NOTRACK', rules: [b.rule({ destination: 'fd00:10:96::a', protocol: 'udp' }, [b.udp({ dport: 53 })], b.notrack())] }],
    jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-NOTRACK')) }],
  },
];

const HOOK_NAMES = ['prerouting', 'input', 'forward', 'output', 'postrouting'];

/** An nft script that recreates the table from nft's own listing of it. */
function scriptFrom(family: IpFamily, json: { chains: NftJsonChain[] }, text: Map<string, { rules: string[] }>): string {
  const regular = json.chains.filter((c) => !c.hook);
  const base = json.chains.filter((c) => c.hook);
  const lines = [`table ${fam(family)} nodenet {`];
  for (const c of [...regular, ...base]) {
    lines.push(`  chain ${c.name} {`);
    if (c.hook) lines.push(`    type ${c.type} hook ${c.hook} priority ${c.prio}; policy ${c.policy};`);
    for (const r of text.get(c.name)?.rules ?? []) lines.push(`    ${r}`);
    lines.push('  }');
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

for (const state of goldens) {
  t.test(`golden ${state.family} ${state.table}: what nft writes, echoed as written, listed naturally`, async (t) => {
    const ours = await makeNetns(t);
    const first = await applyNft(state, { netns: ours.path });
    t.match(first, { committed: true, attempts: 1, lockWaitMs: 0 }, 'one batch');
    t.equal(first.changes[0], `+ table ${fam(state.family)} nodenet`);

    // The kernel holds, attribute for attribute, what the encoder wrote (counter values aside).
    const wanted = wantedChains(state, 'NODENET-');
    const dump = await dumpOf(ours, state.family);
    const rules = byChain(dump);
    for (const w of wanted) {
      const got = rules.get(w.name) ?? [];
      t.equal(got.length, w.rules.length, `${w.name}: every rule`);
      w.rules.forEach((r, i) => {
        const echoed = got[i]!;
        t.same(
          echoed.exprs.map((e) => (e.name === 'counter' ? { ...e, packets: 0n, bytes: 0n } : e)),
          r.exprs,
          `${w.name} rule ${i + 1}: the dump echoes every expression and attribute as written`,
        );
        t.same(echoed.userdata, r.userdata, `${w.name} rule ${i + 1}: userdata as written`);
      });
    }

    // nft's JSON: the layout.
    const json = await nftJson(ours, state.family);
    for (const w of wanted) {
      const c = json.chains.find((x) => x.name === w.name);
      if (!w.base) {
        t.match(c, { name: w.name, family: fam(state.family), table: 'nodenet' }, `${w.name}: a regular chain`);
        t.notOk(c?.hook, `${w.name}: no hook`);
        continue;
      }
      t.same(
        { type: c?.type, hook: c?.hook, prio: c?.prio, policy: c?.policy },
        { type: w.base.type, hook: HOOK_NAMES[w.base.hook], prio: w.base.priority, policy: 'accept' },
        `${w.name}: ${w.base.type} chain at ${HOOK_NAMES[w.base.hook]} priority ${w.base.priority}`,
      );
    }
    t.ok(json.rules.every((r) => r.expr.some((e) => 'counter' in e)), 'every rule counts');
    t.ok(json.rules.some((r) => typeof r.comment === 'string') || !state.chains.some((c) => c.rules.some((r) => r.matches?.some((m) => m.name === 'comment'))), 'comments are nft comments');

    // nft's text: every rule reads as the describer reads it.
    const text = await nftText(ours, state.family);
    for (const [chain, got] of rules) {
      t.same(
        got.map((r) => describeNftRule(r, state.family, { counters: true })),
        text.get(chain)?.rules,
        `${chain}: nft list prints what describeNftRule says`,
      );
    }
    t.notMatch([...text.values()].flatMap((c) => c.rules).join('\n'), /@nh|@th|@ll|unknown|\bxt |#/, 'no raw payload, no xt expression: natural nft syntax');

    // nft, given the lines it printed, writes the same expressions, and nodenet sees nothing to change.
    const theirs = await makeNetns(t);
    await theirs.exec('nft', ['-f', '-'], scriptFrom(state.family, json, text));
    const theirDump = byChain(await dumpOf(theirs, state.family));
    for (const [chain, got] of rules) {
      t.same((theirDump.get(chain) ?? []).map(ruleKey), got.map(ruleKey), `${chain}: nft writes exactly these expressions for these lines`);
    }
    const overNft = await applyNft(state, { netns: theirs.path });
    t.same(overNft.changes, [], 'applied over what nft wrote: nothing to change');
    t.notOk(overNft.committed);

    const again = await nftBackend.apply(state, { netns: ours.path });
    t.same(again, { changes: [], committed: false, attempts: 0, lockWaitMs: 0, lockHoldMs: 0 }, 'second apply: no commit at all');
  });
}

// ---- edits -------------------------------------------------------------------------------------

const counting = (rules: ReturnType<typeof b.rule>[]): TableState => ({
  family: 'ipv4',
  table: 'filter',
  chains: [{ name: 'NODENET-COUNT', rules }, { name: 'NODENET-OTHER', rules: [b.rule({}, [], b.returnTarget())] }],
  jumps: [
    { chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-COUNT')) },
    { chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-OTHER')) },
  ],
});
const count = (n: number) => b.rule({ protocol: 'icmp', destination: `127.0.0.${n}` }, [b.comment(`to 127.0.0.${n}`)], { kind: 'none' as const });

t.test('changing one rule changes that rule; the counters of the others survive', async (t) => {
  const ns = await makeNetns(t);
  await applyNft(counting([count(1), count(2), count(3)]), { netns: ns.path });
  await ns.exec('ping', ['-c', '2', '-i', '0.2', '-q', '127.0.0.1']);
  const before = byChain(await dumpOf(ns, 'ipv4')).get('filter-NODENET-COUNT')!;
  const r = await applyNft(counting([count(1), count(4), count(3)]), { netns: ns.path });
  t.same(r.changes, ['- filter-NODENET-COUNT: ip daddr 127.0.0.2 meta l4proto icmp counter comment "to 127.0.0.2"', '+ filter-NODENET-COUNT: ip daddr 127.0.0.4 meta l4proto icmp counter comment "to 127.0.0.4"']);
  t.ok(r.committed);
  const after = byChain(await dumpOf(ns, 'ipv4')).get('filter-NODENET-COUNT')!;
  t.equal(after[0]!.handle, before[0]!.handle, 'the first rule is the same rule');
  t.equal(after[2]!.handle, before[2]!.handle, 'so is the last');
  t.not(after[1]!.handle, before[1]!.handle, 'the middle one was replaced');
  t.equal(after[0]!.exprs.find((e) => e.name === 'counter')?.packets, 4n, 'the first rule kept its count (2 requests, 2 replies)');
  const text = await nftText(ns, 'ipv4');
  t.same(text.get('filter-NODENET-COUNT')?.rules.map((l) => l.replace(/ counter packets \d+ bytes \d+/, ' counter')), [
    'ip daddr 127.0.0.1 meta l4proto icmp counter comment "to 127.0.0.1"',
    'ip daddr 127.0.0.4 meta l4proto icmp counter comment "to 127.0.0.4"',
    'ip daddr 127.0.0.3 meta l4proto icmp counter comment "to 127.0.0.3"',
  ]);
  t.same((await applyNft(counting([count(1), count(4), count(3)]), { netns: ns.path })).changes, []);
});

t.test('drift is repaired: a flushed chain, a stranger rule, a deleted base chain', async (t) => {
  const ns = await makeNetns(t);
  const state = counting([count(1), count(2)]);
  await applyNft(state, { netns: ns.path });
  const clean = await nftText(ns, 'ipv4');
  await ns.exec('nft', ['flush', 'chain', 'ip', 'nodenet', 'filter-NODENET-COUNT']);
  await ns.exec('nft', ['add', 'rule', 'ip', 'nodenet', 'filter-NODENET-OTHER', 'counter', 'accept']);
  await ns.exec('nft', ['delete', 'chain', 'ip', 'nodenet', 'filter-output']);
  const r = await applyNft(state, { netns: ns.path });
  t.same(r.changes, [
    '+ chain ip nodenet filter-output { type filter hook output priority -10; policy accept; }',
    '+ filter-output: counter jump filter-NODENET-COUNT',
    '+ filter-output: counter jump filter-NODENET-OTHER',
    '+ filter-NODENET-COUNT: ip daddr 127.0.0.1 meta l4proto icmp counter comment "to 127.0.0.1"',
    '+ filter-NODENET-COUNT: ip daddr 127.0.0.2 meta l4proto icmp counter comment "to 127.0.0.2"',
    '- filter-NODENET-OTHER: counter accept',
  ]);
  const strip = (m: Map<string, { decl: string | null; rules: string[] }>) =>
    Object.fromEntries([...m].map(([name, c]) => [name, { ...c, rules: c.rules.map((l) => l.replace(/packets \d+ bytes \d+/, '')) }]));
  t.same(strip(await nftText(ns, 'ipv4')), strip(clean), 'every chain back to what it was');
});

t.test('removing a chain: its jumps first, then the chain; the table stays while anything is left', async (t) => {
  const ns = await makeNetns(t);
  const full = counting([count(1)]);
  await applyNft(full, { netns: ns.path });
  const nat: TableState = { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-X', rules: [b.rule({ destination: '203.0.113.1', protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.dnat('10.96.0.1', 80))] }], jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-X')) }] };
  await applyNft(nat, { netns: ns.path });

  const r = await applyNft({ ...full, chains: [full.chains[0]!], jumps: [full.jumps[0]!] }, { netns: ns.path });
  t.same(r.changes, ['- filter-output: counter jump filter-NODENET-OTHER', '- chain ip nodenet filter-NODENET-OTHER']);
  t.same((await nftJson(ns, 'ipv4')).chains.map((c) => c.name).sort(), ['filter-NODENET-COUNT', 'filter-output', 'nat-NODENET-X', 'nat-prerouting']);

  const noFilter = await applyNft({ family: 'ipv4', table: 'filter', chains: [], jumps: [] }, { netns: ns.path });
  t.same(noFilter.changes, ['- chain ip nodenet filter-output { type filter hook output priority -10; policy accept; }', '- chain ip nodenet filter-NODENET-COUNT']);
  t.same((await nftJson(ns, 'ipv4')).chains.map((c) => c.name).sort(), ['nat-NODENET-X', 'nat-prerouting'], "nat's chains untouched by filter's apply");

  const noNat = await applyNft({ family: 'ipv4', table: 'nat', chains: [], jumps: [] }, { netns: ns.path });
  t.same(noNat.changes.at(-1), '- table ip nodenet', 'the last chains take the table with them');
  t.same(await nftTables(ns), [], 'no nodenet table left');
  const nothing = await applyNft({ family: 'ipv4', table: 'nat', chains: [], jumps: [] }, { netns: ns.path });
  t.same(nothing, { changes: [], committed: false, attempts: 0, lockWaitMs: 0, lockHoldMs: 0 }, 'an empty state where nothing is: nothing, and no table created');
  t.same(await nftTables(ns), []);
});

const FOREIGN = `
table ip filter {
  chain INPUT { type filter hook input priority 0; policy accept; ip saddr 192.0.2.0/24 counter drop; }
  chain KUBE-FIREWALL { meta mark & 0x8000 == 0x8000 drop; }
}
table inet fw {
  chain input { type filter hook input priority 10; policy accept; ct state established accept; }
}
table ip6 nodenet {
  chain filter-NODENET-DROP-INVALID { ct state invalid drop; }
}
table ip other {
  chain nat-prerouting { }
}
`;

t.test('foreign tables and the other family are untouched', async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('nft', ['-f', '-'], FOREIGN);
  const snapshot = async () => Promise.all(['ip filter', 'inet fw', 'ip6 nodenet', 'ip other'].map((x) => ns.exec('nft', ['list', 'table', ...x.split(' ')])));
  const before = await snapshot();
  for (const state of goldens.filter((g) => g.family === 'ipv4')) await applyNft(state, { netns: ns.path });
  for (const state of goldens.filter((g) => g.family === 'ipv4')) await applyNft({ ...state, chains: [], jumps: [] }, { netns: ns.path });
  t.same(await snapshot(), before, 'every other table exactly as it was, ip6 nodenet included');
  t.same(await nftTables(ns), ['table inet fw', 'table ip filter', 'table ip other', 'table ip6 nodenet']);
});

// ---- concurrent writers ------------------------------------------------------------------------

t.test('ERESTART: a foreign commit between dump and commit costs one retry', async (t) => {
  const ns = await makeNetns(t);
  const state = goldens[0]!;
  const r = await applyNft(state, {
    netns: ns.path,
    beforeCommit: async (attempt) => {
      if (attempt === 1) await ns.exec('nft', ['add', 'table', 'ip', 'meanwhile']);
    },
  });
  t.match(r, { committed: true, attempts: 2 });
  t.same((await applyNft(state, { netns: ns.path })).changes, [], 'and the table is complete');
  t.same(await nftTables(ns), ['table ip meanwhile', 'table ip nodenet']);

  let n = 0;
  await t.rejects(
    applyNft(goldens[1]!, { netns: ns.path, maxAttempts: 3, beforeCommit: async () => void (await ns.exec('nft', ['add', 'table', 'ip', `busy${++n}`])) }),
    { name: 'KernelError', code: 'ERESTART', message: /changed under each of 3 commits/ },
    'a writer that never pauses: a clear failure after the bound',
  );
  t.notOk((await nftJson(ns, 'ipv4')).chains.some((c) => c.name.startsWith('filter-')), 'and nothing of the failed state was written');
});

t.test('applying over and over while another writer churns the ruleset', async (t) => {
  const ns = await makeNetns(t);
  const churn = spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', 'while :; do nft add table ip churn; nft delete table ip churn; done'], { stdio: 'ignore' });
  t.teardown(() => void churn.kill('SIGKILL'));
  const versions = [counting([count(1), count(2), count(3)]), counting([count(3), count(2)])];
  let retried = 0;
  for (let i = 0; i < 60; i++) {
    const state = versions[i % 2]!;
    const r = await applyNft(state, { netns: ns.path });
    t.ok(r.committed, `apply ${i + 1} committed (after ${r.attempts} attempts)`);
    if (r.attempts > 1) retried++;
    const check = await diffNft(state, { netns: ns.path });
    t.same(check.changes, [], `apply ${i + 1}: the kernel holds exactly the state`);
  }
  churn.kill('SIGKILL');
  t.comment(`${retried} of 60 applies needed more than one attempt`);
  t.ok(true, 'no apply failed and none was lost');
});

// ---- validation and dry runs -------------------------------------------------------------------

t.test('bad input is refused before the kernel: nothing created, not even with a missing namespace', async (t) => {
  const ns = await makeNetns(t);
  const bad: TableState = { ...goldens[1]!, chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.addrtype({ dst: ['LOCAL', 'BROADCAST'] })], b.drop())] }, goldens[1]!.chains[1]!] };
  await t.rejects(applyNft(bad, { netns: ns.path }), RuleValidationError);
  await t.rejects(applyNft(bad, { netns: '/nonexistent/netns' }), RuleValidationError, 'validation comes before the namespace is even entered');
  await t.rejects(diffNft(bad, { netns: ns.path }), RuleValidationError);
  await t.rejects(applyNft({ ...goldens[0]!, jumps: [{ chain: 'FORWARD', rule: b.rule({}, [], b.jump('NODENET-MARK-MASQ')) }] }, { netns: ns.path }), /not a builtin chain of nat/);
  t.same(await nftTables(ns), []);
});

t.test('diff says what apply would do and does nothing', async (t) => {
  const ns = await makeNetns(t);
  const d = await diffNft(goldens[2]!, { netns: ns.path });
  t.same(d.changes, [
    '+ table ip nodenet',
    '+ chain ip nodenet raw-prerouting { type filter hook prerouting priority -310; policy accept; }',
    '+ chain ip nodenet raw-output { type filter hook output priority -310; policy accept; }',
    '+ chain ip nodenet raw-NODENET-DNS-NOTRACK',
    '+ raw-prerouting: counter jump raw-NODENET-DNS-NOTRACK',
    '+ raw-output: counter jump raw-NODENET-DNS-NOTRACK',
    '+ raw-NODENET-DNS-NOTRACK: ip daddr 10.96.0.10 udp dport 53 counter notrack comment "kube-system/kube-dns cluster IP"',
    '+ raw-NODENET-DNS-NOTRACK: ip saddr 10.244.1.5 udp sport 53 counter notrack comment "kube-system/kube-dns endpoint reply"',
  ]);
  t.match(d, { committed: false, attempts: 0 });
  t.same(await nftTables(ns), []);
  const applied = await applyNft(goldens[2]!, { netns: ns.path });
  t.same(applied.changes, d.changes, 'apply then does exactly that');
});

// ---- the model's whole desired state -----------------------------------------------------------

t.test("the model's desired state, every fix on, both families: written, listed naturally, stable", async (t) => {
  const ns = await makeNetns(t);
  const input: ModelInput = {
    config: { dropInvalidInput: true, externalCluster: true, externalIPs: true, notrackDns: true, dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }], families: ['ipv4', 'ipv6'], podCidrs: {}, masqueradeBit: 14 },
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services: [
      { metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } },
      {
        metadata: { namespace: 'shop', name: 'web' },
        spec: { type: 'LoadBalancer', clusterIP: '10.96.0.20', clusterIPs: ['10.96.0.20', 'fd00:10:96::20'], externalIPs: ['198.51.100.7'], ports: [{ name: 'http', port: 80 }, { name: 'sig', protocol: 'SCTP', port: 3868 }] },
        status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: '2001:db8::10' }] } },
      },
    ],
    dnsEndpointSlices: [
      { metadata: { namespace: 'kube-system', name: 'a', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
    ],
    node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
  };
  const desired = render(input);
  for (const state of applyOrder(desired)) {
    const r = await nftBackend.apply(state, { netns: ns.path });
    t.equal(r.committed, state.chains.length > 0, `${state.family} ${state.table}: committed when it has chains`);
  }
  for (const state of applyOrder(desired)) t.same((await nftBackend.apply(state, { netns: ns.path })).changes, [], `${state.family} ${state.table}: stable`);
  for (const family of ['ipv4', 'ipv6'] as const) {
    const text = await nftText(ns, family);
    const dump = byChain(await dumpOf(ns, family));
    for (const [chain, rules] of dump) t.same(rules.map((r) => describeNftRule(r, family, { counters: true })), text.get(chain)?.rules, `${family} ${chain}: as nft lists it`);
  }
  const v4 = [...(await nftText(ns, 'ipv4')).values()].flatMap((c) => c.rules).join('\n');
  t.match(v4, /ip saddr 10\.244\.1\.0\/24 ip daddr 203\.0\.113\.10 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark \| 0x00004000 comment "shop\/web:http"/);
  t.match(v4, /ip saddr 10\.244\.1\.0\/24 ip daddr 203\.0\.113\.10 sctp dport 3868 counter packets 0 bytes 0 dnat to 10\.96\.0\.20:3868 comment "shop\/web:sig"/);
  t.match(v4, /ct state untracked udp dport 53 counter packets 0 bytes 0 accept/);
  for (const state of applyOrder({ ...desired, tables: desired.tables.map((s) => ({ ...s, chains: [], jumps: [] })) })) await nftBackend.apply(state, { netns: ns.path });
  t.same(await nftTables(ns), [], 'every fix off: both tables gone');
});
