// Exact decimal arithmetic for annotation values. Floating point would turn "0.3ms" into
// 299999.99999999994 ns and let "100.00000000000001%" pass as 100%; bigint keeps every
// written digit, so a value is accepted or refused exactly as written.

/** An unsigned decimal as written: value = digits / 10^scale. */
export interface Decimal {
  digits: bigint;
  scale: number;
}

// Digits with an optional fraction (".5", "5.", "5.25"); no sign, no exponent, no hex: the forms a
// person writes in a tc command, and nothing strtod would also accept by accident.
const DECIMAL = /^(?:\d+\.?\d*|\.\d+)$/;

export function parseDecimal(text: string): Decimal | null {
  if (!DECIMAL.test(text)) return null;
  const dot = text.indexOf('.');
  const whole = dot < 0 ? text : text.slice(0, dot);
  const fraction = dot < 0 ? '' : text.slice(dot + 1);
  return { digits: BigInt((whole + fraction) || '0'), scale: fraction.length };
}

export function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** value × multiplier when that is a whole number, else null. */
export function timesExact(d: Decimal, multiplier: bigint): bigint | null {
  const n = d.digits * multiplier;
  const q = pow10(d.scale);
  return n % q === 0n ? n / q : null;
}

/** ⌊value × multiplier⌋. */
export function timesFloor(d: Decimal, multiplier: bigint): bigint {
  return (d.digits * multiplier) / pow10(d.scale);
}

/** value ≤ limit (an integer), compared exactly. */
export function atMost(d: Decimal, limit: bigint): boolean {
  return d.digits <= limit * pow10(d.scale);
}

export function ceilDiv(n: bigint, d: bigint): bigint {
  return n <= 0n ? n / d : (n + d - 1n) / d;
}

/** record[key] for the record's own keys only: an annotation could well say "constructor". */
export function lookup<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
