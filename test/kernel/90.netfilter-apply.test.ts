// netfilter.apply: nodenet's chains and the jumps into them, written through libiptc, are what
// iptables itself writes for the same rules (byte for byte), repaired when they drift, removed
// when no longer wanted, committed only when something differs, and nothing else is touched.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { isKernelError, netfilter } from '../../lib/kernel/index.js';
import { native } from '../../lib/kernel/native.js';
import type { TableState } from '../../lib/kernel/netfilter/spec.js';

import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { iptables, iptablesRestore, iptablesSave, legacyTableNames } from '../helpers/witness.js';

const b = netfilter.build;

interface Golden {
  family: 'ipv4' | 'ipv6';
  state: TableState;
  /** The same chains and jumps as iptables-restore input, written the iptables way. */
  restore: string;
}

const goldens: Golden[] = [
  {
    family: 'ipv4',
    state: {
      family: 'ipv4',
      table: 'nat',
      chains: [
        {
          name: 'NODENET-EXTERNAL',
          rules: [
            b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.jump('NODENET-MARK-MASQ')),
            b.rule({ source: '10.244.0.0/16', destination: '203.0.113.10', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: 80 })], b.dnat('10.96.0.10', 80)),
            b.rule({ source: '10.244.7.9/16', protocol: 'udp' }, [b.udp({ sport: [1024, 65535], dport: 53 })], b.dnat('10.96.0.11')),
            b.rule({ source: b.not('10.0.0.0/255.0.255.0') }, [b.mark(0x4000, 0x4000, true)], b.returnTarget()),
            b.rule({}, [b.addrtype({ dst: b.not(['LOCAL', 'BROADCAST']) })], b.goTo('NODENET-MARK-MASQ')),
          ],
        },
        { name: 'NODENET-MARK-MASQ', rules: [b.rule({}, [], b.orMark(0x4000)), b.rule({ protocol: b.not('tcp') }, [], { kind: 'none' })] },
      ],
      jumps: [
        { chain: 'PREROUTING', rule: b.rule({}, [b.comment('nodenet: external IPs to cluster IPs')], b.jump('NODENET-EXTERNAL')) },
        { chain: 'OUTPUT', rule: b.rule({}, [b.addrtype({ src: ['LOCAL'] })], b.jump('NODENET-EXTERNAL')) },
      ],
    },
    restore: `*nat
:NODENET-EXTERNAL - [0:0]
:NODENET-MARK-MASQ - [0:0]
-A PREROUTING -m comment --comment "nodenet: external IPs to cluster IPs" -j NODENET-EXTERNAL
-A OUTPUT -m addrtype --src-type LOCAL -j NODENET-EXTERNAL
-A NODENET-EXTERNAL -s 10.244.0.0/16 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web" -m tcp --dport 80 -j NODENET-MARK-MASQ
-A NODENET-EXTERNAL -s 10.244.0.0/16 -d 203.0.113.10/32 -p tcp -m comment --comment "shop/web" -m tcp --dport 80 -j DNAT --to-destination 10.96.0.10:80
-A NODENET-EXTERNAL -s 10.244.7.9/16 -p udp -m udp --sport 1024:65535 --dport 53 -j DNAT --to-destination 10.96.0.11
-A NODENET-EXTERNAL ! -s 10.0.0.0/255.0.255.0 -m mark ! --mark 0x4000/0x4000 -j RETURN
-A NODENET-EXTERNAL -m addrtype ! --dst-type LOCAL,BROADCAST -g NODENET-MARK-MASQ
-A NODENET-MARK-MASQ -j MARK --or-mark 0x4000
-A NODENET-MARK-MASQ ! -p tcp
COMMIT
`,
  },
  {
    family: 'ipv4',
    state: {
      family: 'ipv4',
      table: 'filter',
      chains: [
        { name: 'NODENET-INPUT', rules: [b.rule({}, [b.comment('nodenet: drop INVALID'), b.ctstate(['INVALID'])], b.drop())] },
        { name: 'NODENET-NOTRACK', rules: [b.rule({ protocol: 'udp' }, [b.ctstate(['UNTRACKED']), b.udp({ sport: 53 })], b.accept())] },
      ],
      jumps: [
        { chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-INPUT')) },
        { chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-NOTRACK')) },
        { chain: 'FORWARD', rule: b.rule({}, [], b.jump('NODENET-NOTRACK')) },
      ],
    },
    restore: `*filter
:NODENET-INPUT - [0:0]
:NODENET-NOTRACK - [0:0]
-A INPUT -j NODENET-INPUT
-A INPUT -j NODENET-NOTRACK
-A FORWARD -j NODENET-NOTRACK
-A NODENET-INPUT -m comment --comment "nodenet: drop INVALID" -m conntrack --ctstate INVALID -j DROP
-A NODENET-NOTRACK -p udp -m conntrack --ctstate UNTRACKED -m udp --sport 53 -j ACCEPT
COMMIT
`,
  },
  {
    family: 'ipv4',
    state: {
      family: 'ipv4',
      table: 'raw',
      chains: [{ name: 'NODENET-DNS', rules: [b.rule({ destination: '10.96.0.10', protocol: 'udp' }, [b.udp({ dport: 53 })], b.notrack())] }],
      jumps: [
        { chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-DNS')) },
        { chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DNS')) },
      ],
    },
    restore: `*raw
:NODENET-DNS - [0:0]
-A PREROUTING -j NODENET-DNS
-A OUTPUT -j NODENET-DNS
-A NODENET-DNS -d 10.96.0.10/32 -p udp -m udp --dport 53 -j CT --notrack
COMMIT
`,
  },
  {
    family: 'ipv6',
    state: {
      family: 'ipv6',
      table: 'nat',
      chains: [
        {
          name: 'NODENET-EXTERNAL',
          rules: [
            b.rule({ source: 'fd00:10:244::/56', destination: '2001:db8::10', protocol: 'udp' }, [b.comment('kube-system/dns'), b.udp({ dport: 53 })], b.dnat('fd00:10:96::a', 53)),
            b.rule({ destination: '2001:db8::11', protocol: 'tcp' }, [b.tcp({ dport: 443 })], b.dnat('fd00:10:96::b')),
            b.rule({ protocol: b.not('ipv6-icmp'), inInterface: 'eth0' }, [b.mark(0x4000)], b.orMark(0x4000)),
          ],
        },
      ],
      jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-EXTERNAL')) }],
    },
    restore: `*nat
:NODENET-EXTERNAL - [0:0]
-A PREROUTING -j NODENET-EXTERNAL
-A NODENET-EXTERNAL -s fd00:10:244::/56 -d 2001:db8::10/128 -p udp -m comment --comment "kube-system/dns" -m udp --dport 53 -j DNAT --to-destination [fd00:10:96::a]:53
-A NODENET-EXTERNAL -d 2001:db8::11/128 -p tcp -m tcp --dport 443 -j DNAT --to-destination fd00:10:96::b
-A NODENET-EXTERNAL -i eth0 ! -p ipv6-icmp -m mark --mark 0x4000 -j MARK --or-mark 0x4000
COMMIT
`,
  },
];

// Every byte the kernel holds for each rule (counters aside), as the addon reads them.
async function rawRules(ns: TestNetns, family: 'ipv4' | 'ipv6', table: string) {
  const raw = await native().readTable(family === 'ipv4' ? 4 : 6, table, ns.path);
  return raw.chains.map((c) => ({
    chain: c.name,
    rules: c.rules.map((r) => ({
      ip: r.ip.toString('hex'),
      matches: r.matches.map((m) => [m.name, m.revision, m.data.toString('hex')]),
      target: [r.target.name, r.target.revision, r.target.data.toString('hex'), r.verdict],
    })),
  }));
}

for (const g of goldens) {
  t.test(`golden ${g.family} ${g.state.table}: nodenet writes what iptables writes`, async (t) => {
    const ours = await makeNetns(t);
    const theirs = await makeNetns(t);
    const result = await netfilter.apply(g.state, { netns: ours.path });
    t.ok(result.committed, 'one commit');
    await iptablesRestore(theirs, g.family, g.restore);
    // -m mark --or-mark is how iptables writes it; both sides store MARK --set-xmark.
    t.equal(await iptablesSave(ours, g.family, g.state.table), await iptablesSave(theirs, g.family, g.state.table), 'iptables-legacy-save is identical');
    t.same(await rawRules(ours, g.family, g.state.table), await rawRules(theirs, g.family, g.state.table), 'every header and payload byte is identical');
    const again = await netfilter.apply(g.state, { netns: theirs.path });
    t.same(again.changes, [], 'applied over what iptables wrote: nothing to change');
    t.notOk(again.committed, 'and no commit');
  });
}

async function natState(extraRule = false): Promise<TableState> {
  const rules = [b.rule({ destination: '203.0.113.10', protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.dnat('10.96.0.10', 80))];
  if (extraRule) rules.push(b.rule({ destination: '203.0.113.11', protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.dnat('10.96.0.11', 80)));
  return { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-X', rules }], jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-X')) }] };
}

async function foreignRules(ns: TestNetns): Promise<void> {
  await iptablesRestore(ns, 'ipv4', `*nat
:KUBE-SERVICES - [0:0]
:NODENETISH - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.18.0.2:6443
-A NODENETISH -j RETURN
COMMIT
`);
}

function withoutNodenet(save: string): string {
  return save
    .split('\n')
    .filter((l) => !/NODENET-/.test(l))
    .join('\n');
}

t.test('other rules are untouched; a jump already present stays where it is', async (t) => {
  const ns = await makeNetns(t);
  await foreignRules(ns);
  const before = await iptablesSave(ns, 'ipv4', 'nat');
  await netfilter.apply(await natState(), { netns: ns.path });
  const after = await iptablesSave(ns, 'ipv4', 'nat');
  t.equal(withoutNodenet(after), withoutNodenet(before), 'every foreign chain and rule as it was');
  t.match(after, /:PREROUTING ACCEPT \[0:0\]\n[^]*-A PREROUTING -j NODENET-X\n-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES/, 'a new jump goes first');

  // Another agent puts itself first; nodenet does not fight for the top.
  await iptables(ns, 'ipv4', ['-t', 'nat', '-I', 'PREROUTING', '1', '-j', 'KUBE-SERVICES']);
  const moved = await netfilter.apply(await natState(), { netns: ns.path });
  t.same(moved.changes, [], 'nothing to change');
  t.match(await iptablesSave(ns, 'ipv4', 'nat'), /-A PREROUTING -j KUBE-SERVICES\n-A PREROUTING -j NODENET-X\n/);
});

t.test('drift is repaired: a flushed chain, a deleted jump, a stranger in an owned chain', async (t) => {
  const ns = await makeNetns(t);
  const state = await natState(true);
  await netfilter.apply(state, { netns: ns.path });
  const clean = await iptablesSave(ns, 'ipv4', 'nat');
  await iptables(ns, 'ipv4', ['-t', 'nat', '-F', 'NODENET-X']);
  await iptables(ns, 'ipv4', ['-t', 'nat', '-D', 'PREROUTING', '-j', 'NODENET-X']);
  await iptables(ns, 'ipv4', ['-t', 'nat', '-A', 'PREROUTING', '-j', 'NODENET-X']);
  await iptables(ns, 'ipv4', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '-j', 'NODENET-X']);
  const r = await netfilter.apply(state, { netns: ns.path });
  t.same(r.changes.sort(), [
    'chain NODENET-X: add 2 rules at position 1',
    'delete jump PREROUTING -> NODENET-X (rule 2)',
  ].sort(), `changes: ${r.changes.join('; ')}`);
  t.equal(await iptablesSave(ns, 'ipv4', 'nat'), clean, 'back to exactly what it was');
});

t.test('counters of unchanged rules survive a change elsewhere in the chain', async (t) => {
  const ns = await makeNetns(t);
  const count = (n: number) => b.rule({ protocol: 'icmp', destination: `127.0.0.${n}` }, [], { kind: 'none' as const });
  const state = (rules: ReturnType<typeof count>[]): TableState => ({ family: 'ipv4', table: 'filter', chains: [{ name: 'NODENET-COUNT', rules }], jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-COUNT')) }] });
  await netfilter.apply(state([count(1), count(2), count(3)]), { netns: ns.path });
  await ns.exec('ping', ['-c', '2', '-i', '0.2', '-q', '127.0.0.1']);
  const r = await netfilter.apply(state([count(1), count(4), count(3)]), { netns: ns.path });
  t.same(r.changes, ['chain NODENET-COUNT: replace 1 rule at position 2 of 3 with 1 rule']);
  const [first] = (await netfilter.read({ netns: ns.path, table: 'filter' })).chains.find((c) => c.name === 'NODENET-COUNT')!.rules;
  t.equal(first?.counters.packets, 4n, 'the first rule kept its count (2 requests and 2 replies)');
});

t.test('an empty state removes everything nodenet owns, and only that', async (t) => {
  const ns = await makeNetns(t);
  await foreignRules(ns);
  const before = await iptablesSave(ns, 'ipv4', 'nat');
  await netfilter.apply(await natState(true), { netns: ns.path });
  const r = await netfilter.apply({ family: 'ipv4', table: 'nat', chains: [], jumps: [] }, { netns: ns.path });
  t.same(r.changes.sort(), ['delete chain NODENET-X', 'delete jump PREROUTING -> NODENET-X (rule 1)'].sort());
  t.equal(await iptablesSave(ns, 'ipv4', 'nat'), before, 'the table is as it was before nodenet');
  t.match(before, /NODENETISH/, 'a chain that only looks similar stays');
});

t.test('an empty state on a namespace without the table creates nothing', async (t) => {
  const ns = await makeNetns(t);
  const r = await netfilter.apply({ family: 'ipv6', table: 'raw', chains: [], jumps: [] }, { netns: ns.path });
  t.same(r, { ...r, changes: [], committed: false });
  t.same(await legacyTableNames(ns, 'ipv6'), []);
});

t.test('diff reports and changes nothing', async (t) => {
  const ns = await makeNetns(t);
  const d = await netfilter.diff(await natState(), { netns: ns.path });
  t.same(d.changes, ['create table nat', 'create chain NODENET-X', 'chain NODENET-X: add 1 rule at position 1', 'insert jump PREROUTING -> NODENET-X']);
  t.notOk(d.committed);
  t.same(await legacyTableNames(ns, 'ipv4'), [], 'the table was described, not created');
  await iptables(ns, 'ipv4', ['-t', 'nat', '-N', 'SOMEONE-ELSE']);
  const existing = await netfilter.diff(await natState(), { netns: ns.path });
  t.same(existing.changes, ['create chain NODENET-X', 'chain NODENET-X: add 1 rule at position 1', 'insert jump PREROUTING -> NODENET-X'], 'against an existing table');
  t.notMatch(await iptablesSave(ns, 'ipv4', 'nat'), /NODENET/);
});

t.test('invalid rules are refused before the kernel sees them', async (t) => {
  const ns = await makeNetns(t);
  await foreignRules(ns);
  const before = await iptablesSave(ns, 'ipv4', 'nat');
  const bad: Array<[string, TableState]> = [
    ['DNAT outside nat', { family: 'ipv4', table: 'filter', chains: [{ name: 'NODENET-A', rules: [b.rule({}, [], b.dnat('10.0.0.1'))] }], jumps: [] }],
    ['DNAT reached from POSTROUTING', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({}, [], b.dnat('10.0.0.1'))] }], jumps: [{ chain: 'POSTROUTING', rule: b.rule({}, [], b.jump('NODENET-A')) }] }],
    ['a port without a protocol', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({}, [], b.dnat('10.0.0.1', 80))] }], jumps: [] }],
    ['-m tcp without -p tcp', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({ protocol: 'udp' }, [b.tcp({ dport: 1 })], b.accept())] }], jumps: [] }],
    ['CT outside raw', { family: 'ipv4', table: 'filter', chains: [{ name: 'NODENET-A', rules: [b.rule({}, [], b.notrack())] }], jumps: [] }],
    ['a foreign chain name', { family: 'ipv4', table: 'nat', chains: [{ name: 'KUBE-SERVICES', rules: [] }], jumps: [] }],
    ['a loop', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({}, [], b.jump('NODENET-B'))] }, { name: 'NODENET-B', rules: [b.rule({}, [], b.jump('NODENET-A'))] }], jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-A')) }] }],
    ['a jump to a chain not in the state', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({}, [], b.jump('KUBE-SERVICES'))] }], jumps: [] }],
    ['-o in PREROUTING', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({ outInterface: 'eth0' }, [], b.accept())] }], jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [], b.jump('NODENET-A')) }] }],
    ['an IPv6 address in IPv4', { family: 'ipv4', table: 'nat', chains: [{ name: 'NODENET-A', rules: [b.rule({ destination: 'fd00::1' }, [], b.accept())] }], jumps: [] }],
  ];
  for (const [why, state] of bad) {
    await t.rejects(netfilter.apply(state, { netns: ns.path }), netfilter.RuleValidationError, why);
  }
  t.equal(await iptablesSave(ns, 'ipv4', 'nat'), before, 'nothing changed');
});

t.test('a held xtables lock: a bounded wait, then a clear error', async (t) => {
  const ns = await makeNetns(t);
  const lockfile = join(mkdtempSync(join(tmpdir(), 'nodenet-lock-')), 'xtables.lock');
  const saved = process.env.XTABLES_LOCKFILE;
  process.env.XTABLES_LOCKFILE = lockfile;
  t.teardown(() => {
    if (saved === undefined) delete process.env.XTABLES_LOCKFILE;
    else process.env.XTABLES_LOCKFILE = saved;
  });
  const holder = runAllowingFailure('flock', [lockfile, 'sleep', '2']);
  await new Promise((r) => setTimeout(r, 300));
  const error = await netfilter.apply(await natState(), { netns: ns.path, lockTimeoutMs: 200 }).catch((e: unknown) => e);
  t.ok(isKernelError(error), 'a KernelError');
  if (isKernelError(error)) {
    t.equal(error.code, 'ETIMEDOUT');
    t.equal(error.object, `xtables lock ${lockfile}`);
    t.match(error.message, /another writer held the xtables lock for more than 200 ms/);
  }
  t.notMatch(await iptablesSave(ns, 'ipv4', 'nat').catch(() => ''), /NODENET/, 'nothing written without the lock');
  await holder;
  const r = await netfilter.apply(await natState(), { netns: ns.path, lockTimeoutMs: 200 });
  t.ok(r.committed, 'once the lock is free, the apply goes through');
});
