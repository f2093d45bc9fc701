// No lost update with nf_tables: while an `nft` process keeps adding rules to a table of its own,
// nodenet applies ≥ 2,000 batches to its table. Every batch is checked against the generation it
// was computed from, so a batch that raced the other writer is refused by the kernel and recomputed
// (seen as attempts > 1), and in the end both tables hold exactly what their writers put there.
import { spawn } from 'node:child_process';

import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import type { TableState } from '../../lib/kernel/netfilter/index.js';
import { makeNetns } from '../helpers/netns.js';
import { nftTableJson } from '../helpers/witness.js';

const b = netfilter.build;
const BATCHES = 2000;

function state(i: number): TableState {
  return {
    family: 'ipv4',
    table: 'filter',
    chains: [
      {
        name: 'NODENET-TEST',
        rules: [
          b.rule({ source: `10.${(i >> 8) & 255}.${i & 255}.0/24`, protocol: 'tcp' }, [b.comment(`batch ${i}`), b.tcp({ dport: 80 })], b.accept()),
          b.rule({}, [b.ctstate(['INVALID'])], b.drop()),
        ],
      },
    ],
    jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-TEST')) }],
  };
}

t.test(`${BATCHES} nodenet batches beside a concurrent nft writer lose nothing`, async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('nft', ['add', 'table', 'ip', 'other']);
  await ns.exec('nft', ['add', 'chain', 'ip', 'other', 'c', '{ type filter hook output priority 0; }']);

  // The writer stops when its stop file appears and prints how many rules it added.
  const stop = `/tmp/nodenet-nft-writer-${process.pid}-stop`;
  const script = `i=0; while [ ! -e ${stop} ]; do i=$((i+1)); nft add rule ip other c counter comment "\\"w$i\\"" || exit 1; done; echo $i`;
  const writer = spawn('ip', ['netns', 'exec', ns.name, 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    writer.kill('SIGKILL');
    spawn('rm', ['-f', stop]);
  });
  let written = '';
  writer.stdout.setEncoding('utf8').on('data', (d: string) => (written += d));
  const writerDone = new Promise<number | null>((resolve) => writer.on('close', resolve));

  let attempts = 0;
  let commits = 0;
  for (let i = 0; i < BATCHES; i++) {
    const result = await netfilter.nftBackend.apply(state(i), { netns: ns.path });
    attempts += result.attempts;
    if (result.committed) commits++;
  }
  await ns.exec('touch', [stop]);
  t.equal(await writerDone, 0, 'the nft writer never failed');
  const count = Number(written.trim());
  t.ok(count > 20, `the writer wrote ${count} rules meanwhile`);

  t.equal(commits, BATCHES, 'every batch committed');
  t.ok(attempts > BATCHES, `the generation check made nodenet recompute ${attempts - BATCHES} batches`);

  const other = await nftTableJson(ns, 'ip', 'other');
  const comments = (other?.nftables ?? []).flatMap((x) => (x.rule ? [x.rule.comment] : []));
  t.same(comments, Array.from({ length: count }, (_, k) => `w${k + 1}`), "every one of the writer's rules, once, in order");

  const ours = await nftTableJson(ns, 'ip', 'nodenet');
  const rules = (ours?.nftables ?? []).flatMap((x) => (x.rule ? [x.rule] : []));
  t.same(
    rules.map((r) => `${r.chain} ${r.comment ?? ''}`),
    ['filter-input ', `filter-NODENET-TEST batch ${BATCHES - 1}`, 'filter-NODENET-TEST '],
    "nodenet's table is exactly the last state",
  );
  const again = await netfilter.nftBackend.apply(state(BATCHES - 1), { netns: ns.path });
  t.equal(again.committed, false, 'and applying it again commits nothing');
});
