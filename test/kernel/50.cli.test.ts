// The nodenet CLI, run as a user runs it (the built bin), with forking booby-trapped.
import { join } from 'node:path';

import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import { distEntry, repoRoot } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns } from '../helpers/netns.js';
import { ipLinks, iptables, iptablesRestore, iptablesSave } from '../helpers/witness.js';
import { readFileSync } from 'node:fs';

const forbidFork = join(repoRoot, 'test', 'helpers', 'forbid-fork.mjs');

async function nodenet(...args: string[]) {
  const result = await runAllowingFailure(process.execPath, ['--import', forbidFork, distEntry('lib/cli/nodenet.js'), ...args]);
  if (result.stderr.includes('FORBIDDEN FORK')) throw new Error(`nodenet ${args.join(' ')} tried to fork: ${result.stderr}`);
  return result;
}

interface JsonRule {
  text: string;
  counters: { packets: string; bytes: string };
  target: { kind: string; name?: string; raw?: string };
}
interface JsonTable {
  name: string;
  family: string;
  chains: Array<{ name: string; policy: string | null; builtin: boolean; counters: { packets: string; bytes: string }; rules: JsonRule[] }>;
}

t.test('rules --table nat --json shows what iptables-legacy-save shows', async (t) => {
  const ns = await makeNetns(t);
  await iptablesRestore(ns, 'ipv4', readFileSync(join(repoRoot, 'test', 'fixtures', 'kube-proxy.v4.rules'), 'utf8'));
  const result = await nodenet('rules', '--netns', ns.path, '--table', 'nat', '--json');
  t.equal(result.code, 0, result.stderr);
  const table = JSON.parse(result.stdout) as JsonTable;
  t.equal(table.name, 'nat');
  t.equal(table.family, 'ipv4');
  const witness = (await iptablesSave(ns, 'ipv4', 'nat')).trimEnd().split('\n');
  const rendered = [
    '*nat',
    ...table.chains.map((c) => (c.builtin ? `:${c.name} ${c.policy} [${c.counters.packets}:${c.counters.bytes}]` : `:${c.name} - [0:0]`)),
    ...table.chains.flatMap((c) => c.rules.map((r) => r.text)),
    'COMMIT',
  ];
  t.same(rendered, witness, 'chains, policies, counters and every rule line');
  const dnat = table.chains.flatMap((c) => c.rules).find((r) => r.target.name === 'DNAT');
  t.match(dnat, { target: { kind: 'extension', name: 'DNAT', raw: /^[0-9a-f]+$/ }, counters: { packets: '0', bytes: '0' } }, 'payloads as hex, counters as exact strings');
});

t.test('rules without --table prints every existing table as iptables-save does', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv4', ['-t', 'raw', '-A', 'OUTPUT', '-p', 'udp', '-j', 'CT', '--notrack']);
  await iptables(ns, 'ipv4', ['-A', 'INPUT', '-j', 'DROP']);
  const result = await nodenet('rules', '--netns', ns.path);
  t.equal(result.code, 0, result.stderr);
  const witness = (await ns.exec('iptables-legacy-save', [])).split('\n').filter((l) => !l.startsWith('#')).join('\n');
  t.equal(result.stdout, witness);

  const six = await nodenet('rules', '--netns', ns.path, '--family', 'ipv6');
  t.equal(six.code, 0);
  t.equal(six.stdout, '', 'no ipv6 table exists and none is created');
  t.same(await netfilter.tables({ netns: ns.path, family: 'ipv6' }), []);
});

t.test('links --json and the table view', async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('ip', ['link', 'add', 'br-cli', 'mtu', '1450', 'type', 'bridge']);
  await ns.exec('ip', ['link', 'set', 'br-cli', 'alias', 'made by the test']);
  const json = await nodenet('links', '--netns', ns.path, '--json');
  t.equal(json.code, 0, json.stderr);
  const list = JSON.parse(json.stdout) as Array<{ name: string; mtu: number; kind: string | null; alias: string | null }>;
  const witness = await ipLinks(ns);
  t.same(list.map((l) => l.name), witness.map((l) => l.ifname));
  t.match(list.find((l) => l.name === 'br-cli'), { mtu: 1450, kind: 'bridge', alias: 'made by the test' });
  const text = await nodenet('links', '--netns', ns.path);
  t.match(text.stdout, /^index\s+name\s+kind\s+mtu\s+state\s+master\s+alias\s+flags\n/);
  t.match(text.stdout, /\bbr-cli\s+bridge\s+1450\s+DOWN\s+-\s+made by the test\s+BROADCAST,MULTICAST\n/);
});

t.test('version, help and errors', async (t) => {
  const version = await nodenet('version', '--json');
  t.equal(version.code, 0, version.stderr);
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  t.match(JSON.parse(version.stdout), { nodenet: pkg.version, addon: pkg.version, libnl: /^3\.\d+\.\d+$/, libiptc: /^1\.\d+\.\d+$/ });
  const help = await nodenet('--help');
  t.equal(help.code, 0);
  for (const command of ['version', 'links', 'rules']) t.match(help.stdout, new RegExp(`nodenet ${command}`));
  const unknown = await nodenet('frobnicate');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"/);
  const missing = await nodenet('rules', '--netns', '/var/run/netns/nodenet-none');
  t.equal(missing.code, 1);
  t.equal(missing.stderr, 'nodenet: netfilter.tables netns /var/run/netns/nodenet-none: cannot open network namespace: No such file or directory (ENOENT)\n');
  const noTable = await nodenet('rules', '--table', 'nat', '--netns', (await makeNetns(t)).path);
  t.equal(noTable.code, 1);
  t.match(noTable.stderr, /table nat \(ipv4\) in netns .*: table does not exist in this network namespace \(ENOENT\)/);
});

t.test('the fork trap works', async (t) => {
  const result = await runAllowingFailure(process.execPath, ['--import', forbidFork, '-e', "require('node:child_process').execSync('true')"]);
  t.not(result.code, 0);
  t.match(result.stderr, /FORBIDDEN FORK: child_process.execSync/);
});
