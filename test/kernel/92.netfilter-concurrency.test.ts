// Writers that share a table: nodenet's commits and another xtables writer's, interleaved under the
// xtables lock, lose nothing of each other's; a SIGKILL mid-commit leaves the table wholly old or
// wholly new.
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import type { TableState } from '../../lib/kernel/netfilter/spec.js';
import { distEntry } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { iptablesRestore } from '../helpers/witness.js';

const b = netfilter.build;

// Two versions of nodenet's chain with the same number of rules: a commit that replaced the wrong
// base would not change the entry count, the case the kernel cannot detect by itself.
function version(tag: 'a' | 'b', rules = 5): TableState {
  return {
    family: 'ipv4',
    table: 'filter',
    chains: [{ name: 'NODENET-RACE', rules: Array.from({ length: rules }, (_, i) => b.rule({}, [b.comment(`nodenet ${tag} ${i}`)], b.returnTarget())) }],
    jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-RACE')) }],
  };
}

async function chainComments(ns: TestNetns, chain: string): Promise<string[]> {
  const table = await netfilter.read({ netns: ns.path, table: 'filter' });
  return (table.chains.find((c) => c.name === chain)?.rules ?? []).map((r) => (r.matches[0]?.options as { comment: string } | null)?.comment ?? '?');
}

t.test('no lost update with a concurrent iptables-legacy-restore writer', async (t) => {
  const ns = await makeNetns(t);
  await iptablesRestore(ns, 'ipv4', '*filter\n:FOREIGN - [0:0]\n:FOREIGN-FIXED - [0:0]\n-A FOREIGN-FIXED -m comment --comment v-0 -j RETURN\nCOMMIT\n');
  const writes = 1000;
  // Appends (the entry count changes) alternate with in-place replacements (it does not).
  const script = `for i in $(seq 1 ${writes}); do
    if [ $((i % 2)) -eq 0 ]; then edit="-A FOREIGN -m comment --comment iter-$i -j RETURN"; else edit="-R FOREIGN-FIXED 1 -m comment --comment v-$i -j RETURN"; fi
    printf '*filter\\n%s\\nCOMMIT\\n' "$edit" | iptables-legacy-restore -w 5 --noflush || { echo "restore $i failed"; exit 1; }
  done`;
  const writer = spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let writerOutput = '';
  writer.stdout.on('data', (d: Buffer) => (writerOutput += d.toString()));
  writer.stderr.on('data', (d: Buffer) => (writerOutput += d.toString()));
  const writerDone = new Promise<number>((resolve) => writer.on('close', (code) => resolve(code ?? 1)));
  let writerFinished = false;
  void writerDone.then(() => (writerFinished = true));

  t.teardown(() => writer.kill('SIGKILL'));
  let commits = 0;
  let failures = 0;
  let last: 'a' | 'b' = 'a';
  // A bound on the loop, not a timing assertion: a wedged writer fails the test instead of hanging it.
  const giveUp = Date.now() + 120_000;
  while ((commits < 2000 || !writerFinished) && Date.now() < giveUp) {
    last = commits % 2 === 0 ? 'a' : 'b';
    try {
      const r = await netfilter.apply(version(last), { netns: ns.path });
      if (r.committed) commits++;
    } catch (e) {
      failures++;
      t.fail(`apply failed: ${(e as Error).message}`);
      break;
    }
  }
  t.equal(await writerDone, 0, `the other writer never failed: ${writerOutput.trim()}`);
  t.equal(failures, 0, 'nodenet never failed on the lock');
  t.ok(commits >= 2000, `${commits} nodenet commits`);

  const foreign = await chainComments(ns, 'FOREIGN');
  t.same(foreign, Array.from({ length: writes / 2 }, (_, i) => `iter-${2 * (i + 1)}`), 'every append of the other writer is there, once, in order');
  t.same(await chainComments(ns, 'FOREIGN-FIXED'), [`v-${writes - 1}`], "the other writer's last in-place edit is there");
  t.same(await chainComments(ns, 'NODENET-RACE'), Array.from({ length: 5 }, (_, i) => `nodenet ${last} ${i}`), "nodenet's last commit is there");
  const jumps = (await netfilter.read({ netns: ns.path, table: 'filter' })).chains.find((c) => c.name === 'INPUT')!.rules;
  t.equal(jumps.filter((r) => r.target.kind === 'jump' && r.target.chain === 'NODENET-RACE').length, 1, 'exactly one jump');
});

t.test('SIGKILL during commits leaves each table wholly old or wholly new', async (t) => {
  const ns = await makeNetns(t);
  // Big enough that a commit takes a while, so kills land inside some of them.
  const bulk = ['*filter', ':BULK - [0:0]', ...Array.from({ length: 3000 }, (_, i) => `-A BULK -m comment --comment bulk-${i} -j RETURN`), 'COMMIT', ''].join('\n');
  await iptablesRestore(ns, 'ipv4', bulk);
  const dir = mkdtempSync(join(tmpdir(), 'nodenet-kill-'));
  const loop = join(dir, 'loop.mjs');
  writeFileSync(
    loop,
    `const { netfilter } = await import(${JSON.stringify(distEntry('lib/kernel/index.js'))});
     const b = netfilter.build;
     const state = (tag) => ({ family: 'ipv4', table: 'filter', jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-BIG')) }],
       chains: [{ name: 'NODENET-BIG', rules: Array.from({ length: 2000 }, (_, i) => b.rule({}, [b.comment(tag + ' ' + i)], b.returnTarget())) }] });
     for (let n = 0; ; n++) { await netfilter.apply(state(n % 2 ? 'b' : 'a'), { netns: ${JSON.stringify(ns.path)} }); process.stdout.write('c'); }`,
  );
  const seen = new Set<string>();
  for (let kill = 0; kill < 12; kill++) {
    const child = spawn(process.execPath, [loop], { stdio: ['ignore', 'pipe', 'ignore'] });
    // After its first commit (a slow start, as under the sanitizers, must not leave every kill
    // before any commit), then somewhere in the middle of the run of commits that follows.
    await new Promise((r) => child.stdout.once('data', r));
    await new Promise((r) => setTimeout(r, 50 + kill * 37));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const comments = await chainComments(ns, 'NODENET-BIG');
    const tags = new Set(comments.map((c) => c.split(' ')[0] ?? ''));
    t.ok(comments.length === 0 || (comments.length === 2000 && tags.size === 1), `after kill ${kill + 1}: ${comments.length} rules, versions ${[...tags].join(',')}`);
    for (const tag of tags) seen.add(tag);
  }
  t.equal((await chainComments(ns, 'BULK')).length, 3000, 'the foreign chain is intact');
  const check = await runAllowingFailure('ip', ['netns', 'exec', ns.name, 'iptables-legacy-save', '-t', 'filter']);
  t.equal(check.code, 0, 'the table still reads');
  t.ok(seen.size >= 1, `versions seen after kills: ${[...seen].join(',')}`);
});
