// kubernetes.io/egress-bandwidth and kubernetes.io/ingress-bandwidth: a resource quantity in bits
// per second, read the way kubelet and containerd read it (apimachinery's resource.ParseQuantity,
// then Quantity.Value(), then kubelet's validateBandwidthIsReasonable: 1k ≤ value ≤ 1P), so that a
// value the rest of the cluster accepts is accepted here too, and the same number comes out.
//
// The rate becomes a tbf. The CNI bandwidth plugin itself takes the burst from its caller and
// queues at most 25 ms (limit = rate × 25 ms + burst); its callers pass a burst that makes the cap
// meaningless for anything short: containerd 2^32−1 bits (512 MiB), CRI-O about 4 GiB, i.e. minutes
// of line-rate traffic before the first packet waits. nodenet keeps the plugin's 25 ms queue and
// chooses the burst itself:
//
//   burst = max(10 ms of traffic at the rate, 65553 bytes)     (capped at 2^32−1, tbf's u32)
//
// 10 ms is tc-tbf(8)'s minimum bucket (rate / HZ) for the coarsest timer Linux builds with (HZ=100):
// a smaller bucket overflows between two dequeues and the pod gets less than its cap. 65553 bytes
// is the largest frame a veth can carry (MTU at most 65535, plus a 14-byte Ethernet header and a
// 4-byte VLAN tag): tbf drops an unsegmentable packet larger than its bucket, so no pod MTU can
// make the cap drop every full-size packet. The floor dominates below about 52 Mbit/s.
import type { TbfOptions } from '../../kernel/qdiscs/index.js';

import { ceilDiv, lookup, pow10 } from './decimal.js';
import { annotationError, quote, type Parsed } from './errors.js';

const U32_MAX = 0xffffffffn;
const INT64_MAX = (1n << 63n) - 1n;
/** kubelet's bounds on a bandwidth annotation (pkg/util/bandwidth: "1k" and "1P"). */
export const MIN_BANDWIDTH_BITS = 1_000;
export const MAX_BANDWIDTH_BITS = 1_000_000_000_000_000;
/** The CNI bandwidth plugin's queue: 25 ms of traffic on top of the burst. */
export const BANDWIDTH_LATENCY_NS = 25_000_000;
/** tc-tbf(8)'s minimum bucket at HZ=100, as a fraction of a second of traffic. */
export const BURST_SECONDS_DIVISOR = 100n;
/** ETH_MAX_MTU + ETH_HLEN + VLAN_HLEN. */
export const MIN_BURST_BYTES = 65_535 + 14 + 4;

export const QUANTITY_FORM = 'bits per second as a Kubernetes quantity, like 500k, 10M, 1G or 100Mi (k, M, G, T, P, E are powers of 1000; Ki, Mi, Gi, Ti, Pi, Ei powers of 1024)';

const DECIMAL_SUFFIXES: Readonly<Record<string, number>> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIXES: Readonly<Record<string, number>> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

export type QuantityError = 'format' | 'suffix';

/**
 * Quantity.Value() of a string, as resource.ParseQuantity and Value() compute it: the exact
 * decimal, rounded up (away from zero) to a whole number and capped at ±(2^63−1); or why
 * ParseQuantity would refuse the string.
 */
export function quantityValue(text: string): { value: bigint } | { error: QuantityError } {
  if (text.length === 0) return { error: 'format' };
  // The scan of parseQuantityString: sign, digits, optional fraction, then a suffix made of the
  // suffix letters, an optional sign and digits (only exponents have those).
  const m = text.match(/^([+-]?)(\d*)(?:\.(\d*))?([eEinumkKMGTP]*[+-]?\d*)$/);
  if (!m) return { error: 'format' };
  const [, sign, whole = '', fraction = '', suffix = ''] = m;
  // A string that is a sign, zeros and nothing else is 0 before the suffix is even looked at.
  if (/^[+-]?0*$/.test(text)) return { value: 0n };

  let exponent10: number;
  let exponent2 = 0;
  const decimal = lookup(DECIMAL_SUFFIXES, suffix);
  const binary = lookup(BINARY_SUFFIXES, suffix);
  if (decimal !== undefined) exponent10 = decimal;
  else if (binary !== undefined) {
    exponent10 = 0;
    exponent2 = binary;
  } else if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) {
    // strconv.ParseInt(…, 10, 64), then a conversion to int32 that wraps.
    const digits = suffix.slice(1);
    if (!/^[+-]?\d+$/.test(digits)) return { error: 'suffix' };
    const parsed = BigInt(digits);
    if (parsed > INT64_MAX || parsed < -INT64_MAX - 1n) return { error: 'suffix' };
    exponent10 = Number(BigInt.asIntN(32, parsed));
  } else return { error: 'suffix' };

  const digits = BigInt((whole + fraction) || '0');
  if (digits === 0n) return { value: 0n };
  const negative = sign === '-';
  const scale = exponent10 - fraction.length; // value = digits × 10^scale × 2^exponent2
  const length = digits.toString().length;
  let magnitude: bigint;
  if (length + scale > 20) magnitude = INT64_MAX; // ≥ 10^20 > 2^63: capped either way
  else if (length + scale + Math.ceil(exponent2 * 0.302) < -20) magnitude = 1n; // far below 1: rounds up to 1
  else {
    const numerator = digits * (scale > 0 ? pow10(scale) : 1n) * (1n << BigInt(exponent2));
    magnitude = ceilDiv(numerator, scale < 0 ? pow10(-scale) : 1n);
    if (magnitude > INT64_MAX) magnitude = INT64_MAX;
  }
  return { value: negative ? -magnitude : magnitude };
}

/** A bandwidth annotation's rate in bits per second, with kubelet's bounds. */
export function parseBandwidth(annotation: string, text: string): Parsed<number> {
  const q = quantityValue(text);
  const error = (detail: string): Parsed<number> => ({ ok: false, errors: [annotationError(annotation, text, null, detail)] });
  if ('error' in q) return error(`${quote(text)} is not a quantity: expected ${QUANTITY_FORM}`);
  if (q.value < BigInt(MIN_BANDWIDTH_BITS)) return error(`${quote(text)} is below 1k: expected ${QUANTITY_FORM}, from 1k (1000 bits/s) to 1P`);
  if (q.value > BigInt(MAX_BANDWIDTH_BITS)) return error(`${quote(text)} is above 1P: expected ${QUANTITY_FORM}, from 1k to 1P (10^15 bits/s)`);
  return { ok: true, value: Number(q.value) };
}

/** The tbf for a cap of `bits` per second (see the burst rule above). */
export function bandwidthTbf(bits: number): TbfOptions {
  // The kernel keeps whole bytes per second; the plan carries the rate it will report back.
  const bytes = BigInt(bits) / 8n;
  let burst = ceilDiv(bytes, BURST_SECONDS_DIVISOR);
  if (burst < BigInt(MIN_BURST_BYTES)) burst = BigInt(MIN_BURST_BYTES);
  if (burst > U32_MAX) burst = U32_MAX;
  // limit rather than latency: the same rate × latency + burst the plugin and the qdisc API compute,
  // but held within tbf's u32 at rates where 25 ms of traffic alone would not fit.
  let limit = (bytes * BigInt(BANDWIDTH_LATENCY_NS)) / 1_000_000_000n + burst;
  if (limit > U32_MAX) limit = U32_MAX;
  return { rate: Number(bytes * 8n), burst: Number(burst), limit: Number(limit) };
}
