// `npm run bench`: nodenet against the other ways of programming the same kernel state, measured in
// one run on one machine, reported as medians and ratios (bench/RESULTS.md). Needs root (it makes
// network namespaces, and touches nothing outside them).
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../lib/kernel/native.js';
import { ruleProgramming, type Sample } from './rules.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));

function machine(): string {
  const kernel = execFileSync('uname', ['-r']).toString().trim();
  return `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${kernel}, Node ${process.versions.node}`;
}

async function main(): Promise<number> {
  const counts = (process.env.BENCH_SERVICES ?? '100,1000').split(',').map(Number);
  const reps = Number(process.env.BENCH_REPS ?? 7);
  const { samples, mismatches } = await ruleProgramming(counts, reps);

  const find = (scenario: string, backend: string, background: string, operation: string) =>
    samples.find((s) => s.scenario === scenario && s.backend === backend && s.background === background && s.operation === operation);
  const rows: string[] = [
    '| Services | operation | backend | empty node (ms) | 20,000 foreign rules (ms) | foreign / empty |',
    '|---:|---|---|---:|---:|---:|',
  ];
  const failures: string[] = [...mismatches];
  for (const n of counts) {
    for (const operation of ['cold apply', 'no-change resync', 'one-Service change']) {
      for (const backend of ['iptables-legacy', 'nftables']) {
        const empty = find(`${n} Services`, backend, 'empty', operation) as Sample;
        const full = find(`${n} Services`, backend, '20,000 foreign', operation) as Sample;
        const ratio = median(full.ms) / median(empty.ms);
        rows.push(`| ${n} | ${operation} | ${backend} | ${ms(median(empty.ms))} | ${ms(median(full.ms))} | ${ratio.toFixed(2)} |`);
        // nf_tables batches touch only nodenet's table, so 20,000 rules elsewhere must not make a
        // one-Service change dearer (a whole-table replacement, as libiptc does, would).
        if (backend === 'nftables' && operation === 'one-Service change' && ratio > 1.5) {
          failures.push(`nftables one-Service change at ${n} Services costs ${ratio.toFixed(2)}× in a node with 20,000 foreign rules`);
        }
      }
    }
  }
  const report = [
    '# nodenet benchmarks',
    '',
    `Machine: ${machine()}. ${reps} repetitions per cell, each in a fresh network namespace; medians.`,
    '',
    '## Rule programming: the External-IP fix (4 rules per LoadBalancer Service)',
    '',
    'The foreign rules live in the same backend as nodenet\'s (legacy nat for iptables-legacy, an',
    '`ip kube-proxy` table for nftables), 2,000 chains of 10 rules, as kube-proxy leaves them.',
    '',
    ...rows,
    '',
    ...(failures.length ? ['**Failures:**', '', ...failures.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
  process.stdout.write(report);
  writeFileSync(join(packageRoot(), 'bench', 'RESULTS.md'), report);
  for (const f of failures) process.stderr.write(`bench: ${f}\n`);
  return failures.length ? 1 : 0;
}

process.exitCode = await main();
