// `npm run bench`: nodenet against the other ways of programming the same kernel state, measured in
// one run on one machine, reported as medians and ratios (bench/RESULTS.md). Needs root (it makes
// network namespaces, and touches nothing outside them).
//
// Knobs (environment):
//   BENCH_SERVICES  Service counts for rule programming, default "100,1000,10000"
//   BENCH_REPS      repetitions per cell, default 7 (the targets are medians of ≥ 7)
//   BENCH_ONLY      comma list of sections to run: rules, agent, shaping (default all)
// Exits non-zero when any section lists a failure (methods that ended with different rules, a
// missed target), after writing RESULTS.md with the failures in it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../lib/kernel/native.js';
import { machine, type BenchSection } from './report.js';

const SECTIONS = ['rules', 'agent', 'shaping'] as const;
type SectionKey = (typeof SECTIONS)[number];

/** A section may carry lines for the summary at the top of RESULTS.md. */
type Reported = BenchSection & { headline?: string[] };

function knobs(): { counts: number[]; reps: number; only: Set<SectionKey> } {
  const counts = (process.env.BENCH_SERVICES ?? '100,1000,10000').split(',').map((s) => Number(s.trim()));
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_SERVICES must be a comma list of positive integers, not ${JSON.stringify(process.env.BENCH_SERVICES)}`);
  const reps = Number(process.env.BENCH_REPS ?? 7);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`BENCH_REPS must be a positive integer, not ${JSON.stringify(process.env.BENCH_REPS)}`);
  const only = new Set<SectionKey>();
  for (const key of (process.env.BENCH_ONLY ?? SECTIONS.join(',')).split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(SECTIONS as readonly string[]).includes(key)) throw new Error(`BENCH_ONLY: unknown section ${JSON.stringify(key)} (known: ${SECTIONS.join(', ')})`);
    only.add(key as SectionKey);
  }
  return { counts, reps, only };
}

async function main(): Promise<number> {
  const { counts, reps, only } = knobs();
  const started = Date.now();
  const sections: Reported[] = [];
  const run = async (key: SectionKey, fn: () => Promise<Reported[]>) => {
    if (!only.has(key)) return;
    const t0 = Date.now();
    try {
      sections.push(...(await fn()));
    } catch (e) {
      // A section that cannot finish is a failure of the run, not a reason to lose the others.
      process.stderr.write(`bench: ${key}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      sections.push({ title: `${key} (did not finish)`, lines: [], failures: [`${key}: ${e instanceof Error ? e.message : String(e)}`] });
    }
    process.stderr.write(`bench: ${key} took ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  };
  // Imported only when asked for, so that one section runs alone without loading the others.
  await run('rules', async () => (await import('./rules.js')).rulesBenchmarks({ counts, reps }));
  await run('agent', async () => (await import('./agent.js')).agentBenchmarks({ reps }));
  await run('shaping', async () => (await import('./shaping-overlays.js')).shapingOverlayBenchmarks());

  const failures = sections.flatMap((s) => s.failures.map((f) => `${s.title}: ${f}`));
  const headline = sections.flatMap((s) => s.headline ?? []);
  const report = [
    '# nodenet benchmarks',
    '',
    `Machine: ${machine()}.`,
    `Run: \`BENCH_SERVICES=${counts.join(',')} BENCH_REPS=${reps} BENCH_ONLY=${[...only].join(',')}\`, ${((Date.now() - started) / 60000).toFixed(1)} min, ${new Date().toISOString().slice(0, 10)}.`,
    'Each scenario in fresh network namespaces; medians of the repetitions.',
    '',
    ...(headline.length ? ['## Summary', '', ...headline.map((h) => `- ${h}`), ''] : []),
    failures.length ? `**${failures.length} failure${failures.length === 1 ? '' : 's'}** (listed at the end): this run does not meet its checks.` : 'All checks passed: every method ended with the same rules, every target met.',
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', ...s.lines, '', ...(s.failures.length ? ['**Failures:**', '', ...s.failures.map((f) => `- ${f}`), ''] : [])]),
    ...(failures.length ? ['## Failures', '', ...failures.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
  process.stdout.write(report);
  writeFileSync(join(packageRoot(), 'bench', 'RESULTS.md'), report);
  for (const f of failures) process.stderr.write(`bench: FAILED: ${f}\n`);
  return failures.length ? 1 : 0;
}

process.exitCode = await main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 2;
});
