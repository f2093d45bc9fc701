// tbf's TCA_OPTIONS: nested attributes around struct tc_tbf_qopt, encoded as tc does it (rates in
// bytes per second with 64-bit attributes past 4 GB/s, buffer as psched ticks plus the exact burst
// in bytes), with the Ethernet link layer declared so the kernel needs no rate table.
import { AttributeWriter, HOST_LITTLE_ENDIAN as LE, parseAttributes } from './attributes.js';

const NS_PER_TICK = 64;
const U32_MAX = 0xffffffff;
const TC_LINKLAYER_ETHERNET = 1;
const TCA_TBF = { PARMS: 1, RATE64: 4, PRATE64: 5, BURST: 6, PBURST: 7 } as const;
const RATESPEC_SIZE = 12;
const QOPT_SIZE = 2 * RATESPEC_SIZE + 12;

/** tbf parameters: rates in bits per second, sizes in bytes, latency in nanoseconds. */
export interface TbfOptions {
  rate: number;
  /** Bucket size in bytes. */
  burst: number;
  /** Queue size in bytes; give this or latency. */
  limit?: number;
  /** How long a packet may wait in the queue; sets limit = rate × latency + burst. */
  latency?: number;
  peakrate?: number;
  /** Peak-rate bucket in bytes (tc's mtu/minburst); required with peakrate. */
  mtu?: number;
  overhead?: number;
  mpu?: number;
}

export interface TbfReport {
  rate: number;
  burst: number;
  limit: number;
  peakrate: number;
  mtu: number;
  overhead: number;
  mpu: number;
}

export class TbfOptionError extends RangeError {
  override readonly name = 'TbfOptionError';
}

function whole(value: number | undefined, what: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new TbfOptionError(`${what} must be a whole number from ${min} to ${max}, not ${value}`);
  return value;
}

/** psched ticks to send size bytes at bytesPerSecond (tc_calc_xmittime). */
function xmitTicks(bytesPerSecond: bigint, size: number): number {
  if (bytesPerSecond === 0n) return 0;
  const ns = (BigInt(size) * 1_000_000_000n) / bytesPerSecond;
  const t = ns / BigInt(NS_PER_TICK);
  return t > BigInt(U32_MAX) ? U32_MAX : Number(t);
}

function ratespec(bytesPerSecond: bigint, overhead: number, mpu: number): Buffer {
  const b = Buffer.alloc(RATESPEC_SIZE);
  b.writeUInt8(0, 0); // cell_log: only used with a rate table
  b.writeUInt8(TC_LINKLAYER_ETHERNET, 1);
  const rate = bytesPerSecond >= BigInt(U32_MAX) ? U32_MAX : Number(bytesPerSecond);
  if (LE) {
    b.writeUInt16LE(overhead, 2);
    b.writeInt16LE(-1, 4); // cell_align
    b.writeUInt16LE(mpu, 6);
    b.writeUInt32LE(rate, 8);
  } else {
    b.writeUInt16BE(overhead, 2);
    b.writeInt16BE(-1, 4);
    b.writeUInt16BE(mpu, 6);
    b.writeUInt32BE(rate, 8);
  }
  return b;
}

/** The TCA_OPTIONS payload for these parameters. Throws TbfOptionError for invalid ones. */
export function encodeTbf(o: TbfOptions): Buffer {
  const rateBits = whole(o.rate, 'rate (bits/s)', 8, Number.MAX_SAFE_INTEGER)!;
  const burst = whole(o.burst, 'burst (bytes)', 1, U32_MAX)!;
  const limitGiven = whole(o.limit, 'limit (bytes)', 1, U32_MAX);
  const latency = whole(o.latency, 'latency (ns)', 0, Number.MAX_SAFE_INTEGER);
  if ((limitGiven === undefined) === (latency === undefined)) throw new TbfOptionError('tbf needs exactly one of limit and latency');
  const peakBits = whole(o.peakrate, 'peakrate (bits/s)', 8, Number.MAX_SAFE_INTEGER);
  const mtu = whole(o.mtu, 'mtu (bytes)', 1, U32_MAX);
  if (peakBits !== undefined && mtu === undefined) throw new TbfOptionError('tbf peakrate needs mtu (the peak-rate bucket)');
  if (peakBits !== undefined && peakBits <= rateBits) throw new TbfOptionError('tbf peakrate must be greater than rate');
  const overhead = whole(o.overhead, 'overhead', 0, 0xffff) ?? 0;
  const mpu = whole(o.mpu, 'mpu', 0, 0xffff) ?? 0;

  const rate = BigInt(Math.floor(rateBits / 8));
  const peak = peakBits === undefined ? 0n : BigInt(Math.floor(peakBits / 8));
  let limit = limitGiven ?? Number((rate * BigInt(latency!)) / 1_000_000_000n) + burst;
  if (peak > 0n && latency !== undefined) limit = Math.min(limit, Number((peak * BigInt(latency)) / 1_000_000_000n) + mtu!);
  if (limit > U32_MAX) throw new TbfOptionError(`tbf limit ${limit} exceeds 4 GiB; use a smaller latency`);

  const qopt = Buffer.alloc(QOPT_SIZE);
  ratespec(rate, overhead, mpu).copy(qopt, 0);
  if (peak > 0n) ratespec(peak, overhead, mpu).copy(qopt, RATESPEC_SIZE);
  const tail = [limit, xmitTicks(rate, burst), peak > 0n ? xmitTicks(peak, mtu!) : 0];
  tail.forEach((v, i) => (LE ? qopt.writeUInt32LE(v, 2 * RATESPEC_SIZE + 4 * i) : qopt.writeUInt32BE(v, 2 * RATESPEC_SIZE + 4 * i)));

  const attrs = new AttributeWriter().put(TCA_TBF.PARMS, qopt).u32(TCA_TBF.BURST, burst);
  if (rate >= BigInt(U32_MAX)) attrs.u64(TCA_TBF.RATE64, rate);
  if (peak > 0n) {
    attrs.u32(TCA_TBF.PBURST, mtu!);
    if (peak >= BigInt(U32_MAX)) attrs.u64(TCA_TBF.PRATE64, peak);
  }
  return attrs.bytes();
}

function u64(b: Buffer | undefined): bigint | undefined {
  if (!b || b.length < 8) return undefined;
  return LE ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0);
}

/** Bytes sendable at bytesPerSecond in `ticks` (tc_calc_xmitsize), rounded as tc prints it. */
function xmitSize(bytesPerSecond: bigint, ticks: number): number {
  return Math.round((Number(bytesPerSecond) * ticks * NS_PER_TICK) / 1e9);
}

/** Decodes a tbf TCA_OPTIONS payload as the kernel dumps it. */
export function decodeTbf(options: Buffer): TbfReport {
  const attrs = parseAttributes(options);
  const q = attrs.get(TCA_TBF.PARMS) ?? Buffer.alloc(QOPT_SIZE);
  const r32 = (off: number) => (q.length >= off + 4 ? (LE ? q.readUInt32LE(off) : q.readUInt32BE(off)) : 0);
  const r16 = (off: number) => (q.length >= off + 2 ? (LE ? q.readUInt16LE(off) : q.readUInt16BE(off)) : 0);
  const rate = u64(attrs.get(TCA_TBF.RATE64)) ?? BigInt(r32(8));
  const peak = u64(attrs.get(TCA_TBF.PRATE64)) ?? BigInt(r32(RATESPEC_SIZE + 8));
  return {
    rate: Number(rate) * 8,
    burst: xmitSize(rate, r32(2 * RATESPEC_SIZE + 4)),
    limit: r32(2 * RATESPEC_SIZE),
    peakrate: Number(peak) * 8,
    mtu: peak > 0n ? xmitSize(peak, r32(2 * RATESPEC_SIZE + 8)) : 0,
    overhead: r16(2),
    mpu: r16(6),
  };
}
