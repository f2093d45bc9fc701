// tc as the witness for netem: `tc -j qdisc show` decoded by iproute2, compared with the NetemReport
// nodenet decodes itself from the same qdisc, attribute by attribute. Agreement with a second,
// independent decoder is what shows nodenet read (and set) what the kernel holds.
//
//   const [tc] = JSON.parse(await ns.exec('tc', ['-j', 'qdisc', 'show', 'dev', 'eth0'])) as TcQdisc[];
//   compareNetemWithTc(t, tc, ours?.netem);
import type { NetemOptions, NetemReport } from '../../lib/kernel/qdiscs/index.js';

/**
 * Every parameter set, each to a value none of the others has, so that tc and nodenet decoding a
 * field from the wrong place shows. As an annotation: `delay 100ms 10ms 25% loss 1% 30% duplicate
 * 0.1% 5% corrupt 0.2% 7% reorder 25% 50% gap 5 rate 8mbit 14 64 2 limit 2000 ecn`.
 */
export const EVERY_NETEM_PARAMETER = {
  delay: 100_000_000,
  jitter: 10_000_000,
  delayCorrelation: 25,
  loss: 1,
  lossCorrelation: 30,
  duplicate: 0.1,
  duplicateCorrelation: 5,
  corrupt: 0.2,
  corruptCorrelation: 7,
  reorder: 25,
  reorderCorrelation: 50,
  gap: 5,
  rate: 8_000_000,
  packetOverhead: 14,
  cellSize: 64,
  cellOverhead: 2,
  limit: 2000,
  ecn: true,
} satisfies NetemOptions;

/** A qdisc as `tc -j qdisc show` prints it; `packets` only with `-s`. */
export interface TcQdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options: {
    limit?: number;
    delay?: { delay: number; jitter: number; correlation: number };
    'loss-random'?: { loss: number; correlation: number };
    duplicate?: { duplicate: number; correlation: number };
    reorder?: { reorder: number; correlation: number };
    corrupt?: { corrupt: number; correlation: number };
    rate?: { rate: number; packetoverhead: number; cellsize: number; celloverhead: number };
    ecn?: boolean;
    gap?: number;
  };
  packets?: number;
}

interface Equal {
  equal(found: unknown, wanted: unknown, message: string): unknown;
}

/** An assertion per attribute, so that a disagreement names the attribute. */
export function compareNetemWithTc(t: Equal, tcQdisc: TcQdisc | undefined, report: NetemReport | undefined): void {
  if (!tcQdisc) throw new Error('tc shows no qdisc to compare with');
  const o = tcQdisc.options;
  // tc prints times in seconds and percentages as fractions; rounding keeps float noise out.
  const pct = (x: number | undefined) => Math.round((x ?? 0) * 1e8) / 1e6;
  t.equal(o.limit, report?.limit, 'limit');
  t.equal(Math.round((o.delay?.delay ?? 0) * 1e9), report?.delay, 'delay');
  t.equal(Math.round((o.delay?.jitter ?? 0) * 1e9), report?.jitter, 'jitter');
  t.equal(pct(o.delay?.correlation), report?.delayCorrelation, 'delay correlation');
  t.equal(pct(o['loss-random']?.loss), report?.loss, 'loss');
  t.equal(pct(o['loss-random']?.correlation), report?.lossCorrelation, 'loss correlation');
  t.equal(pct(o.duplicate?.duplicate), report?.duplicate, 'duplicate');
  t.equal(pct(o.duplicate?.correlation), report?.duplicateCorrelation, 'duplicate correlation');
  t.equal(pct(o.corrupt?.corrupt), report?.corrupt, 'corrupt');
  t.equal(pct(o.corrupt?.correlation), report?.corruptCorrelation, 'corrupt correlation');
  t.equal(pct(o.reorder?.reorder), report?.reorder, 'reorder');
  t.equal(pct(o.reorder?.correlation), report?.reorderCorrelation, 'reorder correlation');
  t.equal(o.gap, report?.gap, 'gap');
  t.equal((o.rate?.rate ?? 0) * 8, report?.rate, 'rate (tc: bytes/s)');
  t.equal(o.rate?.packetoverhead, report?.packetOverhead, 'packet overhead');
  t.equal(o.rate?.cellsize, report?.cellSize, 'cell size');
  t.equal(o.rate?.celloverhead, report?.cellOverhead, 'cell overhead');
  t.equal(o.ecn ?? false, report?.ecn, 'ecn');
}
