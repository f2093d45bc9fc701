// nodenet.io/shaping-expires: an RFC 3339 time, or a Go duration (what kubectl users write
// elsewhere: "90s", "1h30m") counted from when the pod's shaping was first applied. Both are
// parsed by hand: Date.parse accepts far more than RFC 3339 and maps years 0-99 to the 1900s.
import { ceilDiv, lookup } from './decimal.js';
import { annotationError, quote, type Parsed } from './errors.js';

export type Expiry = { kind: 'time'; at: Date } | { kind: 'duration'; nanoseconds: bigint };

export const EXPIRY_FORM = 'an RFC 3339 time like 2030-01-02T15:04:05Z or 2030-01-02T17:04:05+02:00, or a duration from when the shaping was applied like 90s, 1h30m or 500ms (units ns, us, ms, s, m, h)';

const INT64_MAX = (1n << 63n) - 1n;
const NS_PER_MS = 1_000_000n;

// time.ParseDuration's units, including both spellings of micro (U+00B5 and U+03BC).
const DURATION_UNITS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  '\u00b5s': 1_000n,
  '\u03bcs': 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** time.ParseDuration's grammar, [-+]?([0-9]*(\.[0-9]*)?[unit])+ or "0"; the value in ns, or null. */
export function parseGoDuration(text: string): bigint | null {
  let s = text;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return null;
  let total = 0n;
  while (s !== '') {
    const m = s.match(/^(\d*)(?:\.(\d*))?([^.\d]*)/)!;
    const [all, whole = '', fraction, unitText = ''] = m;
    if (whole === '' && (fraction ?? '') === '') return null; // no digits: ".s"
    const unit = lookup(DURATION_UNITS, unitText);
    if (unit === undefined) return null; // missing or unknown unit
    const digits = fraction ?? '';
    // Go adds the fraction through a float64 and truncates; exact truncation agrees except where
    // float rounding would differ in the last nanosecond.
    total += BigInt(whole || '0') * unit + (BigInt(digits || '0') * unit) / 10n ** BigInt(digits.length);
    if (total > INT64_MAX + (negative ? 1n : 0n)) return null; // overflows time.Duration
    s = s.slice(all.length);
  }
  return negative ? -total : total;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

// Days from 1970-01-01 to a proleptic Gregorian date (month 1-12), in whole-era arithmetic.
function daysFromEpoch(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthFromMarch = (month + 9) % 12;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** An RFC 3339 date-time (as Go's time.RFC3339 reads it: no leap second), or null. */
export function parseRfc3339(text: string): Date | null {
  const m = text.match(RFC3339);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const fraction = m[7] ?? '';
  // Rounded up to the millisecond a Date holds, so shaping never ends before the time written.
  const fractionMs = fraction === '' ? 0 : Number(ceilDiv(BigInt(fraction) * 1000n, 10n ** BigInt(fraction.length)));
  const ms = ((daysFromEpoch(year, month, day) * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + fractionMs;
  return new Date(ms);
}

export function parseExpiry(annotation: string, text: string): Parsed<Expiry> {
  const at = parseRfc3339(text);
  if (at) return { ok: true, value: { kind: 'time', at } };
  const ns = parseGoDuration(text);
  if (ns !== null && ns >= 0n) return { ok: true, value: { kind: 'duration', nanoseconds: ns } };
  const detail = ns !== null ? `${quote(text)} is a negative duration: expected ${EXPIRY_FORM}` : `${quote(text)} is neither a time nor a duration: expected ${EXPIRY_FORM}`;
  return { ok: false, errors: [annotationError(annotation, text, null, detail)] };
}

/** The absolute end of shaping: the time itself, or appliedAt plus the duration rounded up to a millisecond. */
export function expiryTime(expiry: Expiry, appliedAt: Date): Date {
  if (expiry.kind === 'time') return new Date(expiry.at.getTime());
  return new Date(appliedAt.getTime() + Number(ceilDiv(expiry.nanoseconds, NS_PER_MS)));
}
