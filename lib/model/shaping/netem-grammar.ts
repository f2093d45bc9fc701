// The grammar of nodenet.io/egress-netem and nodenet.io/ingress-netem: tc-netem(8)'s option
// syntax, restricted to what nodenet's netem API can set, with every value range-checked here so
// that a bad annotation becomes a Warning naming its token instead of a kernel or encoder error.
//
//   delay TIME [JITTER [CORRELATION]]      distribution normal|pareto|paretonormal|uniform
//   loss [random] PERCENT [CORRELATION]    duplicate PERCENT [CORRELATION]
//   corrupt PERCENT [CORRELATION]          reorder PERCENT [CORRELATION]     gap PACKETS
//   rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]                     limit PACKETS    ecn
//
// Where this is stricter than tc, it is so that an annotation means one thing everywhere:
// - keywords are written in full (tc accepts any prefix, resolved by the order of its if-chain);
// - a time needs its unit: a bare number is microseconds to tc's 32-bit parser and nanoseconds to
//   its 64-bit one, which netem uses;
// - a percentage needs its "%": "0.5" reads as a fraction to anyone not steeped in tc;
// - numbers are plain decimals (tc's strtod also takes "1e3", "0x10", "inf").
// Like tc, an optional value is taken only when the next token looks like a number (so
// "loss 1% duplicate 2%" needs no separators), units are case-insensitive, and a rate's unit table
// is tc's: bit/kbit/mbit/gbit/tbit and the kibit…tibit forms are bits per second, while
// bps/kbps/mbps/gbps/tbps and kibps…tibps are BYTES per second (tc compares case-insensitively,
// so "Mbps" is megabytes too); a bare rate is bits per second.
import type { NetemDistribution, NetemOptions } from '../../kernel/qdiscs/index.js';

import { atMost, lookup, parseDecimal, timesExact, timesFloor } from './decimal.js';
import { annotationError, quote, type AnnotationError, type Parsed } from './errors.js';

const U32_MAX = 0xffffffff;
const S32_MIN = -0x80000000;
const S32_MAX = 0x7fffffff;
/** The kernel stores netem's jitter in an s64 but caps it at INT_MAX ns, the most tabledist() handles. */
export const MAX_JITTER_NS = S32_MAX;
/** The qdisc API takes times as safe-integer nanoseconds (about 104 days). */
export const MAX_DELAY_NS = Number.MAX_SAFE_INTEGER;
/** The qdisc API's largest rate; the kernel's 64-bit rate in bytes would hold more. */
export const MAX_RATE_BITS = Number.MAX_SAFE_INTEGER;

export const NETEM_KEYWORDS = ['delay', 'distribution', 'loss', 'duplicate', 'corrupt', 'reorder', 'gap', 'rate', 'limit', 'ecn'] as const;
type Keyword = (typeof NETEM_KEYWORDS)[number];

export const DISTRIBUTIONS: readonly NetemDistribution[] = ['normal', 'pareto', 'paretonormal', 'uniform'];

export const FORMS = {
  time: 'a time like 100ms, 1.5s or 250us (units s, sec, ms, msec, us, usec, ns, nsec)',
  percent: 'a percentage like 1% or 0.5%',
  percentRange: 'a percentage from 0% to 100%',
  rate: 'a rate like 500kbit, 10mbit or 1gbit (bit, kbit, mbit, gbit, tbit, kibit … tibit; bps, kbps, mbps, gbps, tbps and kibps … tibps are bytes per second)',
  distribution: `one of ${DISTRIBUTIONS.join(', ')}`,
  packets: `a whole number of packets from 1 to ${U32_MAX}`,
  signedBytes: `a whole number of bytes from ${S32_MIN} to ${S32_MAX}`,
  unsignedBytes: `a whole number of bytes from 0 to ${U32_MAX}`,
} as const;

const TIME_UNITS: Readonly<Record<string, bigint>> = {
  s: 1_000_000_000n, sec: 1_000_000_000n, secs: 1_000_000_000n,
  ms: 1_000_000n, msec: 1_000_000n, msecs: 1_000_000n,
  us: 1_000n, usec: 1_000n, usecs: 1_000n,
  ns: 1n, nsec: 1n, nsecs: 1n,
};

const KI = 1024n;
const RATE_UNITS: Readonly<Record<string, bigint>> = {
  '': 1n,
  bit: 1n, kibit: KI, kbit: 1_000n, mibit: KI ** 2n, mbit: 1_000_000n, gibit: KI ** 3n, gbit: 1_000_000_000n, tibit: KI ** 4n, tbit: 1_000_000_000_000n,
  bps: 8n, kibps: 8n * KI, kbps: 8_000n, mibps: 8n * KI ** 2n, mbps: 8_000_000n, gibps: 8n * KI ** 3n, gbps: 8_000_000_000n, tibps: 8n * KI ** 4n, tbps: 8_000_000_000_000n,
};

interface Token {
  text: string;
  column: number;
}

function tokenize(text: string): Token[] {
  return [...text.matchAll(/[^ \t\n\r\f\v]+/g)].map((m) => ({ text: m[0], column: (m.index ?? 0) + 1 }));
}

// tc's NEXT_IS_NUMBER, widened to signs and a leading dot so that "-5%" or ".5%" after a keyword is
// reported as a bad value of that keyword rather than as an unknown keyword.
function looksNumeric(token: Token | undefined): token is Token {
  return token !== undefined && /^[-+.0-9]/.test(token.text);
}

function isKeyword(text: string): text is Keyword {
  return (NETEM_KEYWORDS as readonly string[]).includes(text);
}

// Names tc (or a habit from it) might suggest that nodenet does not take, with what to write instead.
const HINTS: Readonly<Record<string, string>> = {
  latency: 'write delay',
  drop: 'write loss',
  slot: 'slot is not supported by nodenet',
};

/** Parses a netem annotation's value. Every problem found is reported, each with its own token. */
export function parseNetem(annotation: string, text: string): Parsed<NetemOptions> {
  const tokens = tokenize(text);
  const errors: AnnotationError[] = [];
  const out: NetemOptions = {};
  const seen = new Map<Keyword, Token>();
  // The tokens later cross-keyword checks point at.
  const at: Partial<Record<'jitter' | 'distribution' | 'reorder' | 'gap' | 'ecn', Token>> = {};
  let i = 0;

  const fail = (token: Token, detail: string) => errors.push(annotationError(annotation, token.text, token.column, detail));
  const bad = (label: string, token: Token, form: string) => fail(token, `${label} ${quote(token.text)} at column ${token.column}: expected ${form}`);

  /** The keyword's required value, or null (reported) when the annotation ends or a keyword follows. */
  const required = (keyword: Token, form: string): Token | null => {
    const next = tokens[i];
    if (next === undefined || isKeyword(next.text)) {
      fail(keyword, `${quote(keyword.text)} at column ${keyword.column} needs a value: expected ${form}`);
      return null;
    }
    i++;
    return next;
  };
  const optional = (): Token | null => (looksNumeric(tokens[i]) ? tokens[i++]! : null);

  const time = (label: string, token: Token, max: number, maxText: string): number | null => {
    const m = token.text.match(/^([^a-zA-Z]*)([a-zA-Z]*)$/);
    const value = m ? parseDecimal(m[1]!) : null;
    const unit = m ? lookup(TIME_UNITS, m[2]!.toLowerCase()) : undefined;
    if (!value || unit === undefined) {
      bad(label, token, FORMS.time);
      return null;
    }
    const ns = timesExact(value, unit);
    if (ns === null) {
      bad(label, token, 'a time in whole nanoseconds, like 1.5ms or 250us');
      return null;
    }
    if (ns > BigInt(max)) {
      bad(label, token, `a time from 0 to ${maxText}`);
      return null;
    }
    return Number(ns);
  };
  const percent = (label: string, token: Token): number | null => {
    const value = token.text.endsWith('%') ? parseDecimal(token.text.slice(0, -1)) : null;
    if (!value) {
      bad(label, token, FORMS.percent);
      return null;
    }
    if (!atMost(value, 100n)) {
      bad(label, token, FORMS.percentRange);
      return null;
    }
    return Number(token.text.slice(0, -1));
  };
  const integer = (label: string, token: Token, min: number, max: number, form: string): number | null => {
    const n = /^[-+]?\d+$/.test(token.text) ? BigInt(token.text) : null;
    if (n === null || n < BigInt(min) || n > BigInt(max)) {
      bad(label, token, form);
      return null;
    }
    return Number(n);
  };
  const rate = (token: Token): number | null => {
    if (token.text.endsWith('%')) {
      bad('rate', token, `${FORMS.rate}; a percentage of the link speed is not supported`);
      return null;
    }
    const m = token.text.match(/^([^a-zA-Z]*)([a-zA-Z]*)$/);
    const value = m ? parseDecimal(m[1]!) : null;
    const unit = m ? lookup(RATE_UNITS, m[2]!.toLowerCase()) : undefined;
    if (!value || unit === undefined) {
      bad('rate', token, FORMS.rate);
      return null;
    }
    // The kernel keeps whole bytes per second; the plan carries the rate it will report back.
    const bytes = timesFloor(value, unit) / 8n;
    if (bytes < 1n || bytes * 8n > BigInt(MAX_RATE_BITS)) {
      bad('rate', token, `a rate from 8bit to ${MAX_RATE_BITS}bit`);
      return null;
    }
    return Number(bytes * 8n);
  };
  /** "percent [correlation]", the shape shared by loss, duplicate, corrupt and reorder. */
  const chance = (keyword: Token, label: string, set: (p: number) => void, setCorrelation: (p: number) => void) => {
    const value = required(keyword, FORMS.percent);
    if (value) {
      const p = percent(label, value);
      if (p !== null) set(p);
    }
    const corr = optional();
    if (corr) {
      const c = percent(`${label} correlation`, corr);
      if (c !== null) setCorrelation(c);
    }
  };

  while (i < tokens.length) {
    const token = tokens[i++]!;
    const word = token.text;
    if (!isKeyword(word)) {
      const hint = lookup(HINTS, word);
      fail(token, `${quote(word)} at column ${token.column} is not a netem keyword${hint ? ` (${hint})` : ''}: expected one of ${NETEM_KEYWORDS.join(', ')}`);
      // Skip the values a mistyped keyword would have had, so they are not reported again.
      while (looksNumeric(tokens[i])) i++;
      continue;
    }
    const first = seen.get(word);
    if (first) fail(token, `${quote(word)} at column ${token.column} repeats the one at column ${first.column}: each keyword may be given once`);
    else seen.set(word, token);

    switch (word) {
      case 'delay': {
        const value = required(token, FORMS.time);
        if (value) {
          const ns = time('delay', value, MAX_DELAY_NS, `${MAX_DELAY_NS}ns`);
          if (ns !== null) out.delay = ns;
        }
        const jitter = optional();
        if (jitter) {
          at.jitter = jitter;
          const ns = time('jitter', jitter, MAX_JITTER_NS, '2.147483647s (the kernel caps jitter there)');
          if (ns !== null) out.jitter = ns;
          const corr = optional();
          if (corr) {
            const c = percent('delay correlation', corr);
            if (c !== null) out.delayCorrelation = c;
          }
        }
        break;
      }
      case 'distribution': {
        const value = required(token, FORMS.distribution);
        if (value) {
          at.distribution = value;
          if ((DISTRIBUTIONS as readonly string[]).includes(value.text)) out.distribution = value.text as NetemDistribution;
          else bad('distribution', value, FORMS.distribution);
        }
        break;
      }
      case 'loss': {
        const model = tokens[i];
        if (model?.text === 'random') i++;
        else if (model?.text === 'state' || model?.text === 'gemodel') {
          i++;
          bad('loss', model, 'loss [random] PERCENT [CORRELATION]; the 4-state and Gilbert-Elliott loss models are not supported');
          while (looksNumeric(tokens[i])) i++;
          break;
        }
        chance(token, 'loss', (p) => (out.loss = p), (c) => (out.lossCorrelation = c));
        break;
      }
      case 'duplicate':
        chance(token, 'duplicate', (p) => (out.duplicate = p), (c) => (out.duplicateCorrelation = c));
        break;
      case 'corrupt':
        chance(token, 'corrupt', (p) => (out.corrupt = p), (c) => (out.corruptCorrelation = c));
        break;
      case 'reorder': {
        const value = tokens[i];
        if (value && !isKeyword(value.text)) at.reorder = value;
        chance(token, 'reorder', (p) => (out.reorder = p), (c) => (out.reorderCorrelation = c));
        break;
      }
      case 'gap': {
        const value = required(token, FORMS.packets);
        if (value) {
          at.gap = value;
          const n = integer('gap', value, 1, U32_MAX, FORMS.packets);
          if (n !== null) out.gap = n;
        }
        break;
      }
      case 'rate': {
        const value = required(token, FORMS.rate);
        if (value) {
          const r = rate(value);
          if (r !== null) out.rate = r;
        }
        // tc's order: packet overhead and cell overhead are signed, the cell size is not.
        const overhead = optional();
        if (overhead) {
          const n = integer('packet overhead', overhead, S32_MIN, S32_MAX, FORMS.signedBytes);
          if (n !== null) out.packetOverhead = n;
          const cellSize = optional();
          if (cellSize) {
            const c = integer('cell size', cellSize, 0, U32_MAX, FORMS.unsignedBytes);
            if (c !== null) out.cellSize = c;
            const cellOverhead = optional();
            if (cellOverhead) {
              const o = integer('cell overhead', cellOverhead, S32_MIN, S32_MAX, FORMS.signedBytes);
              if (o !== null) out.cellOverhead = o;
            }
          }
        }
        break;
      }
      case 'limit': {
        const value = required(token, FORMS.packets);
        if (value) {
          const n = integer('limit', value, 1, U32_MAX, FORMS.packets);
          if (n !== null) out.limit = n;
        }
        break;
      }
      case 'ecn':
        at.ecn = token;
        out.ecn = true;
        break;
    }
  }

  // What the kernel would refuse or silently ignore, checked only on values that parsed: a value
  // already reported as malformed is not blamed a second time.
  const delayed = (out.delay ?? 0) > 0;
  if (at.jitter && out.jitter !== undefined && out.jitter > 0 && out.delay !== undefined && !delayed) {
    bad('jitter', at.jitter, 'a delay above 0 before it, like delay 100ms 10ms');
  }
  if (at.distribution && out.distribution && !(out.jitter !== undefined && out.jitter > 0) && !(at.jitter && out.jitter === undefined) && !(seen.has('delay') && out.delay === undefined)) {
    bad('distribution', at.distribution, 'a delay with a jitter above 0 (delay TIME JITTER), like delay 100ms 10ms distribution normal');
  }
  if (at.reorder && out.reorder !== undefined && !delayed && !(seen.has('delay') && out.delay === undefined)) {
    bad('reorder', at.reorder, 'a delay above 0 as well (reordering sends some packets at once and delays the rest), like delay 10ms reorder 25%');
  }
  if (at.gap && out.gap !== undefined && !(out.reorder !== undefined && out.reorder > 0) && !(seen.has('reorder') && out.reorder === undefined)) {
    bad('gap', at.gap, 'a reorder percentage above 0 as well, like delay 10ms reorder 25% gap 5');
  }
  if (at.ecn && !(out.loss !== undefined && out.loss > 0) && !(seen.has('loss') && out.loss === undefined)) {
    fail(at.ecn, `${quote('ecn')} at column ${at.ecn.column} needs a loss above 0 (ecn marks the packets loss would drop), like loss 1% ecn`);
  }

  errors.sort((a, b) => (a.column ?? 0) - (b.column ?? 0));
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out };
}
