// netem's TCA_OPTIONS: struct tc_netem_qopt followed by attributes (not a nested set), encoded as
// tc does it: percentages as fractions of 2^32-1, times both as psched ticks (64 ns) and as exact
// 64-bit nanoseconds.
import { readFileSync } from 'node:fs';

import { AttributeWriter, HOST_LITTLE_ENDIAN as LE, parseAttributes, u32 } from './attributes.js';

const QOPT_SIZE = 24; // struct tc_netem_qopt
const NS_PER_TICK = 64; // PSCHED_SHIFT 6
const U32_MAX = 0xffffffff;

const TCA_NETEM = {
  CORR: 1,
  DELAY_DIST: 2,
  REORDER: 3,
  CORRUPT: 4,
  LOSS: 5,
  RATE: 6,
  ECN: 7,
  RATE64: 8,
  LATENCY64: 10,
  JITTER64: 11,
} as const;

export type NetemDistribution = 'uniform' | 'normal' | 'pareto' | 'paretonormal';

/** netem parameters. Times in nanoseconds, probabilities in percent, rate in bits per second. */
export interface NetemOptions {
  delay?: number;
  jitter?: number;
  delayCorrelation?: number;
  /** How jitter is distributed; the kernel does not report it back. */
  distribution?: NetemDistribution;
  loss?: number;
  lossCorrelation?: number;
  duplicate?: number;
  duplicateCorrelation?: number;
  corrupt?: number;
  corruptCorrelation?: number;
  /** Percent of packets sent at once (out of order) instead of delayed; needs a delay. */
  reorder?: number;
  reorderCorrelation?: number;
  /** Reorder every gap-th packet (tc's `gap`); 1 when reorder is set without it. */
  gap?: number;
  rate?: number;
  packetOverhead?: number;
  cellSize?: number;
  cellOverhead?: number;
  /** Queue length in packets (default 1000). */
  limit?: number;
  ecn?: boolean;
}

/** What the kernel reports for a netem qdisc: every field, zero when unused. */
export type NetemReport = Required<Omit<NetemOptions, 'distribution'>> & { lossModel: 'random' | 'gi' | 'ge' };

/** Thrown for parameters the kernel would reject or tc would refuse. */
export class NetemOptionError extends RangeError {
  override readonly name = 'NetemOptionError';
}

function fraction(percent: number | undefined, what: string): number {
  if (percent === undefined) return 0;
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) throw new NetemOptionError(`${what} must be a percentage from 0 to 100, not ${percent}`);
  return Math.round((percent / 100) * U32_MAX);
}

/** The percentage a kernel fraction stands for, to the 6 significant digits tc prints. */
function percent(value: number): number {
  return Number(((value / U32_MAX) * 100).toPrecision(6));
}

function nanoseconds(ns: number | undefined, what: string): bigint {
  if (ns === undefined) return 0n;
  if (!Number.isSafeInteger(ns) || ns < 0) throw new NetemOptionError(`${what} must be a whole, non-negative number of nanoseconds, not ${ns}`);
  return BigInt(ns);
}

function ticks(ns: bigint): number {
  const t = ns / BigInt(NS_PER_TICK);
  return t > BigInt(U32_MAX) ? U32_MAX : Number(t);
}

function whole(value: number | undefined, what: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) throw new NetemOptionError(`${what} must be a whole number from ${min} to ${max}, not ${value}`);
  return value;
}

function struct32(values: number[], signed: boolean[] = []): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => {
    if (signed[i]) {
      if (LE) b.writeInt32LE(v, i * 4);
      else b.writeInt32BE(v, i * 4);
    } else if (LE) b.writeUInt32LE(v >>> 0, i * 4);
    else b.writeUInt32BE(v >>> 0, i * 4);
  });
  return b;
}

const DIST_DIRS = ['/usr/lib/x86_64-linux-gnu/tc', '/usr/lib/aarch64-linux-gnu/tc', '/usr/lib/tc', '/usr/lib64/tc', '/usr/share/tc'];

/** iproute2's distribution table (NAME.dist: signed 16-bit samples scaled by NETEM_DIST_SCALE). */
function distributionTable(name: NetemDistribution): Buffer {
  for (const dir of DIST_DIRS) {
    let text: string;
    try {
      text = readFileSync(`${dir}/${name}.dist`, 'latin1');
    } catch {
      continue;
    }
    const values = text
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .join(' ')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    const table = Buffer.alloc(values.length * 2);
    values.forEach((v, i) => (LE ? table.writeInt16LE(v, i * 2) : table.writeInt16BE(v, i * 2)));
    return table;
  }
  throw new NetemOptionError(`netem distribution ${name} needs iproute2's table ${name}.dist (looked in ${DIST_DIRS.join(', ')})`);
}

/** The TCA_OPTIONS payload for these parameters. Throws NetemOptionError for invalid ones. */
export function encodeNetem(o: NetemOptions): Buffer {
  const delay = nanoseconds(o.delay, 'delay');
  const jitter = nanoseconds(o.jitter, 'jitter');
  const reorder = fraction(o.reorder, 'reorder');
  if (jitter > 0n && delay === 0n) throw new NetemOptionError('jitter needs a delay');
  if (reorder && delay === 0n) throw new NetemOptionError('reordering needs a delay');
  if (o.distribution && o.distribution !== 'uniform' && (delay === 0n || jitter === 0n)) {
    throw new NetemOptionError(`distribution ${o.distribution} needs a delay and a jitter`);
  }
  const gap = whole(o.gap, 'gap', 0, U32_MAX, 0) || (reorder ? 1 : 0);
  const limit = whole(o.limit, 'limit', 1, U32_MAX, 1000);
  const rateBytes = o.rate === undefined ? 0n : BigInt(Math.floor(whole(o.rate, 'rate (bits/s)', 0, Number.MAX_SAFE_INTEGER, 0) / 8));

  const qopt = struct32([ticks(delay), limit, fraction(o.loss, 'loss'), gap, fraction(o.duplicate, 'duplicate'), ticks(jitter)]);
  const attrs = new AttributeWriter();
  if (delay > 0n) attrs.s64(TCA_NETEM.LATENCY64, delay);
  if (jitter > 0n) attrs.s64(TCA_NETEM.JITTER64, jitter);
  attrs.put(TCA_NETEM.CORR, struct32([fraction(o.delayCorrelation, 'delay correlation'), fraction(o.lossCorrelation, 'loss correlation'), fraction(o.duplicateCorrelation, 'duplicate correlation')]));
  attrs.put(TCA_NETEM.REORDER, struct32([reorder, fraction(o.reorderCorrelation, 'reorder correlation')]));
  attrs.put(TCA_NETEM.CORRUPT, struct32([fraction(o.corrupt, 'corrupt'), fraction(o.corruptCorrelation, 'corrupt correlation')]));
  // The kernel keeps the previous value of any attribute left out of a change, so everything that
  // has an "off" value is always sent: a replace then means exactly these parameters.
  attrs.u32(TCA_NETEM.ECN, o.ecn ? 1 : 0);
  const overhead = whole(o.packetOverhead, 'packet overhead', -0x80000000, 0x7fffffff, 0);
  const cellSize = whole(o.cellSize, 'cell size', 0, U32_MAX, 0);
  const cellOverhead = whole(o.cellOverhead, 'cell overhead', -0x80000000, 0x7fffffff, 0);
  attrs.put(TCA_NETEM.RATE, struct32([rateBytes >= BigInt(U32_MAX) ? U32_MAX : Number(rateBytes), overhead, cellSize, cellOverhead], [false, true, false, true]));
  if (rateBytes >= BigInt(U32_MAX)) attrs.u64(TCA_NETEM.RATE64, rateBytes);
  // A delay distribution table cannot be removed by a change (the kernel rejects an empty one):
  // going back to uniform jitter needs the qdisc re-created.
  if (o.distribution && o.distribution !== 'uniform') attrs.put(TCA_NETEM.DELAY_DIST, distributionTable(o.distribution));
  return Buffer.concat([qopt, attrs.bytes()]);
}

function readU32(b: Buffer | undefined, index: number): number {
  if (!b || b.length < (index + 1) * 4) return 0;
  return LE ? b.readUInt32LE(index * 4) : b.readUInt32BE(index * 4);
}

function readS32(b: Buffer | undefined, index: number): number {
  if (!b || b.length < (index + 1) * 4) return 0;
  return LE ? b.readInt32LE(index * 4) : b.readInt32BE(index * 4);
}

function readU64(b: Buffer | undefined): bigint | undefined {
  if (!b || b.length < 8) return undefined;
  return LE ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
}

/** Decodes a netem TCA_OPTIONS payload as the kernel dumps it. */
export function decodeNetem(options: Buffer): NetemReport {
  const qopt = options.subarray(0, QOPT_SIZE);
  const attrs = parseAttributes(options, QOPT_SIZE);
  const latency64 = readU64(attrs.get(TCA_NETEM.LATENCY64));
  const jitter64 = readU64(attrs.get(TCA_NETEM.JITTER64));
  const corr = attrs.get(TCA_NETEM.CORR);
  const reorder = attrs.get(TCA_NETEM.REORDER);
  const corrupt = attrs.get(TCA_NETEM.CORRUPT);
  const rate = attrs.get(TCA_NETEM.RATE);
  const rate64 = readU64(attrs.get(TCA_NETEM.RATE64));
  const loss = attrs.get(TCA_NETEM.LOSS);
  const lossModel = loss ? (parseAttributes(loss).has(1) ? 'gi' : parseAttributes(loss).has(2) ? 'ge' : 'random') : 'random';
  return {
    delay: latency64 !== undefined ? Number(latency64) : readU32(qopt, 0) * NS_PER_TICK,
    jitter: jitter64 !== undefined ? Number(jitter64) : readU32(qopt, 5) * NS_PER_TICK,
    delayCorrelation: percent(readU32(corr, 0)),
    loss: percent(readU32(qopt, 2)),
    lossCorrelation: percent(readU32(corr, 1)),
    lossModel,
    duplicate: percent(readU32(qopt, 4)),
    duplicateCorrelation: percent(readU32(corr, 2)),
    corrupt: percent(readU32(corrupt, 0)),
    corruptCorrelation: percent(readU32(corrupt, 1)),
    reorder: percent(readU32(reorder, 0)),
    reorderCorrelation: percent(readU32(reorder, 1)),
    gap: readU32(qopt, 3),
    rate: Number(rate64 ?? BigInt(readU32(rate, 0))) * 8,
    packetOverhead: readS32(rate, 1),
    cellSize: readU32(rate, 2),
    cellOverhead: readS32(rate, 3),
    limit: readU32(qopt, 1),
    ecn: readU32(attrs.get(TCA_NETEM.ECN), 0) !== 0,
  };
}

export { u32 };
