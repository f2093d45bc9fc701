// What every scenario family of `npm run bench` hands to bench/run.ts, and the statistics they share.
import { execFileSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

/** One section of bench/RESULTS.md. */
export interface BenchSection {
  /** The `## ` heading. */
  title: string;
  /** Markdown below the heading: what was measured and how, then the table(s). */
  lines: string[];
  /**
   * Why the run must fail: a method whose output differed from the others', a missed target.
   * bench/run.ts prints them, lists them in RESULTS.md and exits non-zero.
   */
  failures: string[];
}

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100) of a non-empty sample. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) throw new Error('percentile of an empty sample');
  const sorted = [...xs].sort((a, b) => a - b);
  if (p === 50 && sorted.length % 2 === 0) {
    const m = sorted.length >> 1;
    return (sorted[m - 1]! + sorted[m]!) / 2;
  }
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** Milliseconds as the tables print them. */
export function ms(v: number): string {
  return v < 10 ? v.toFixed(2) : v.toFixed(1);
}

export function machine(): string {
  const kernel = execFileSync('uname', ['-r']).toString().trim();
  return `${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${kernel}, Node ${process.versions.node}`;
}
