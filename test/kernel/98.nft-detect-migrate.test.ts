// Backend detection in namespaces made to look like each kind of node, and migration between the
// two backends. Witnesses: nft (nf_tables), iptables-legacy-save and the kernel's own list of
// legacy tables, which must not grow while nodenet only looks.
import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import { detectBackend } from '../../lib/kernel/netfilter/detect.js';
import { removeLegacy, removeNft, removeOtherBackend } from '../../lib/kernel/netfilter/migrate.js';
import { distEntry } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { iptablesRestore, iptablesSave, legacyTableNames } from '../helpers/witness.js';

const nft = (ns: TestNetns, script: string) => ns.exec('nft', ['-f', '-'], script);
const nftTables = async (ns: TestNetns) => (await ns.exec('nft', ['list', 'tables'])).trim().split('\n').filter(Boolean);

async function legacyNames(ns: TestNetns): Promise<string[]> {
  return [...(await legacyTableNames(ns, 'ipv4')).map((n) => `ipv4 ${n}`), ...(await legacyTableNames(ns, 'ipv6')).map((n) => `ipv6 ${n}`)].sort();
}

// What iptables-nft writes for kubelet's hints (kubelet >= 1.17 creates them in mangle).
const NFT_HINTS = `
table ip mangle {
  chain KUBE-IPTABLES-HINT {}
  chain KUBE-KUBELET-CANARY {}
}
table ip filter {
  chain INPUT { type filter hook input priority 0; policy accept; }
}
`;

const LEGACY_RULES = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
-A INPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL -m mark --mark 0x8000/0x8000 -j DROP
-A FORWARD -s 10.244.0.0/16 -j ACCEPT
COMMIT
`;

t.test('kubelet hints in nf_tables: nftables, even with legacy rules present', async (t) => {
  const ns = await makeNetns(t);
  await nft(ns, NFT_HINTS);
  await iptablesRestore(ns, 'ipv4', LEGACY_RULES);
  const choice = await detectBackend({ netns: ns.path });
  t.equal(choice.backend, 'nftables');
  t.equal(choice.forced, false);
  t.same(choice.evidence.nftHints.sort(), ['ip mangle KUBE-IPTABLES-HINT', 'ip mangle KUBE-KUBELET-CANARY']);
  t.equal(choice.evidence.legacyRules, 3);
  t.match(choice.reason, /hint chains are in nf_tables/);
});

t.test('kubelet hints in legacy mangle: iptables-legacy, even when nft holds more rules', async (t) => {
  const ns = await makeNetns(t);
  await iptablesRestore(ns, 'ipv4', '*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n');
  await nft(ns, 'table ip other {\n  chain c { type filter hook input priority 0; counter; counter; counter; }\n}\n');
  const choice = await detectBackend({ netns: ns.path });
  t.equal(choice.backend, 'iptables-legacy');
  t.same(choice.evidence.legacyHints, ['ipv4 mangle KUBE-IPTABLES-HINT']);
  t.equal(choice.evidence.nftRules, 3);
});

t.test('no hints: legacy rules in use ⇒ iptables-legacy; nodenet\'s own rules are no evidence', async (t) => {
  const ns = await makeNetns(t);
  await iptablesRestore(ns, 'ipv4', LEGACY_RULES);
  const choice = await detectBackend({ netns: ns.path });
  t.equal(choice.backend, 'iptables-legacy');
  t.match(choice.reason, /legacy iptables holds 3 rules and nf_tables 0/);

  const own = await makeNetns(t);
  await netfilter.legacyBackend.apply(
    { family: 'ipv4', table: 'filter', chains: [{ name: 'NODENET-X', rules: [netfilter.build.rule({}, [], netfilter.build.drop())] }], jumps: [{ chain: 'INPUT', rule: netfilter.build.rule({}, [], netfilter.build.jump('NODENET-X')) }] },
    { netns: own.path },
  );
  t.match(await iptablesSave(own, 'ipv4', 'filter'), /-A INPUT -j NODENET-X/);
  const second = await detectBackend({ netns: own.path });
  t.equal(second.evidence.legacyRules, 0, 'a NODENET chain and the jump into it do not count');
  t.equal(second.backend, 'nftables', "so nodenet's earlier legacy rules do not keep it on legacy");
});

t.test('neither: nftables, and looking creates no legacy table', async (t) => {
  const ns = await makeNetns(t);
  t.same(await legacyNames(ns), []);
  const choice = await detectBackend({ netns: ns.path });
  t.equal(choice.backend, 'nftables');
  t.match(choice.reason, /no hint chains; nf_tables holds 0 rules and legacy iptables 0/);
  t.same(await legacyNames(ns), [], 'no legacy table exists after detection');
  t.same(await nftTables(ns), [], 'and no nft table either');
});

t.test('existing legacy tables are read, never added to', async (t) => {
  const ns = await makeNetns(t);
  await iptablesRestore(ns, 'ipv4', LEGACY_RULES);
  const before = await legacyNames(ns);
  t.same(before, ['ipv4 filter']);
  const choice = await detectBackend({ netns: ns.path });
  t.same(choice.evidence.legacyTables, ['ipv4 filter']);
  t.same(await legacyNames(ns), before);
});

t.test('BACKEND forces a backend; the evidence is still reported', async (t) => {
  const ns = await makeNetns(t);
  await nft(ns, NFT_HINTS);
  const choice = await detectBackend({ netns: ns.path, setting: 'iptables-legacy' });
  t.match(choice, { backend: 'iptables-legacy', forced: true, reason: 'BACKEND=iptables-legacy' });
  t.equal(choice.evidence.nftHints.length, 2);
});

t.test('nodenet version reports the choice and the evidence', async (t) => {
  const ns = await makeNetns(t);
  await nft(ns, NFT_HINTS);
  const result = await runAllowingFailure(process.execPath, [distEntry('lib/cli/nodenet.js'), 'version', '--netns', ns.path, '--json']);
  t.equal(result.code, 0, result.stderr);
  t.match(JSON.parse(result.stdout), {
    libnftnl: /^1\.\d+\.\d+$/,
    libmnl: /^1\.\d+\.\d+$/,
    backend: { backend: 'nftables', forced: false, evidence: { nftHints: ['ip mangle KUBE-IPTABLES-HINT', 'ip mangle KUBE-KUBELET-CANARY'] } },
  });
  const text = await runAllowingFailure(process.execPath, [distEntry('lib/cli/nodenet.js'), 'version', '--netns', ns.path], { env: { ...process.env, BACKEND: 'iptables-legacy' } });
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /netfilter backend: iptables-legacy \(forced by BACKEND=iptables-legacy\)/);
  t.match(text.stdout, /evidence: nft hints \[ip mangle KUBE-IPTABLES-HINT, ip mangle KUBE-KUBELET-CANARY\]/);
});

t.test('migration to nftables removes nodenet\'s legacy chains and jumps, and nothing else', async (t) => {
  const ns = await makeNetns(t);
  await iptablesRestore(ns, 'ipv4', LEGACY_RULES);
  const b = netfilter.build;
  await netfilter.legacyBackend.apply(
    {
      family: 'ipv4',
      table: 'filter',
      chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.ctstate(['INVALID'])], b.drop())] }],
      jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DROP-INVALID')) }],
    },
    { netns: ns.path },
  );
  await netfilter.legacyBackend.apply(
    {
      family: 'ipv6',
      table: 'raw',
      chains: [{ name: 'NODENET-DNS-NOTRACK', rules: [b.rule({ protocol: 'udp' }, [b.udp({ dport: 53 })], b.notrack())] }],
      jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DNS-NOTRACK')) }],
    },
    { netns: ns.path },
  );
  const tablesBefore = await legacyNames(ns);
  const removed = await removeOtherBackend('nftables', { netns: ns.path });
  t.ok(removed.some((l) => l.startsWith('ipv4 filter:')) && removed.some((l) => l.startsWith('ipv6 raw:')), removed.join('\n'));
  const v4 = await iptablesSave(ns, 'ipv4', 'filter');
  t.notMatch(v4, /NODENET/);
  t.match(v4, /-A INPUT -j KUBE-FIREWALL\n-A FORWARD -s 10.244.0.0\/16 -j ACCEPT\n-A KUBE-FIREWALL -m mark --mark 0x8000\/0x8000 -j DROP/);
  t.notMatch(await iptablesSave(ns, 'ipv6', 'raw'), /NODENET/);
  t.same(await legacyNames(ns), tablesBefore, 'no table created or removed');
  t.same(await removeLegacy({ netns: ns.path }), [], 'a second pass finds nothing');
});

t.test("migration to legacy deletes nodenet's nft tables, and nothing else", async (t) => {
  const ns = await makeNetns(t);
  await nft(
    ns,
    `table ip nodenet {
  chain filter-input { type filter hook input priority -10; ct state invalid drop; }
}
table ip6 nodenet {
  chain raw-output { type filter hook output priority -310; }
}
table inet other {
  chain c { type filter hook input priority 0; counter; }
}
table ip filter {
  chain INPUT { type filter hook input priority 0; policy accept; }
}
`,
  );
  const removed = await removeOtherBackend('iptables-legacy', { netns: ns.path });
  t.same(removed.sort(), ['- table ip nodenet', '- table ip6 nodenet']);
  t.same((await nftTables(ns)).sort(), ['table inet other', 'table ip filter']);
  t.same(await removeNft({ netns: ns.path }), [], 'a second pass finds nothing');
  t.same(await legacyNames(ns), [], 'no legacy table appeared');
});
