// The netem annotation grammar: every keyword, unit and boundary, and the exact wording of every
// error (the token as written, its column, the accepted form).
import t from 'tap';

import { encodeNetem } from '../../lib/kernel/qdiscs/netem.js';
import { parseNetem } from '../../lib/model/shaping/index.js';

const A = 'nodenet.io/egress-netem';

const TIME_FORM = 'a time like 100ms, 1.5s or 250us (units s, sec, ms, msec, us, usec, ns, nsec)';
const PERCENT_FORM = 'a percentage like 1% or 0.5%';
const RATE_FORM =
  'a rate like 500kbit, 10mbit or 1gbit (bit, kbit, mbit, gbit, tbit, kibit … tibit; bps, kbps, mbps, gbps, tbps and kibps … tibps are bytes per second)';
const PACKETS_FORM = 'a whole number of packets from 1 to 4294967295';
const SIGNED_FORM = 'a whole number of bytes from -2147483648 to 2147483647';
const KEYWORDS = 'delay, distribution, loss, duplicate, corrupt, reorder, gap, rate, limit, ecn';

const valid: Array<[string, Record<string, unknown>]> = [
  // the example of the brief, every keyword at once
  [
    'delay 100ms 10ms 25% distribution normal loss 1% 25% duplicate 0.1% corrupt 0.01% reorder 25% 50% gap 5 rate 1mbit limit 1000',
    { delay: 100_000_000, jitter: 10_000_000, delayCorrelation: 25, distribution: 'normal', loss: 1, lossCorrelation: 25, duplicate: 0.1, corrupt: 0.01, reorder: 25, reorderCorrelation: 50, gap: 5, rate: 1_000_000, limit: 1000 },
  ],
  // order does not matter, nor which whitespace separates
  ['limit 1000 rate 1mbit gap 5 reorder 25% 50% corrupt 0.01% duplicate 0.1% loss 1% 25% distribution normal delay 100ms 10ms 25%',
    { limit: 1000, rate: 1_000_000, gap: 5, reorder: 25, reorderCorrelation: 50, corrupt: 0.01, duplicate: 0.1, loss: 1, lossCorrelation: 25, distribution: 'normal', delay: 100_000_000, jitter: 10_000_000, delayCorrelation: 25 }],
  ['\tdelay\n10ms \r\n loss  1% ', { delay: 10_000_000, loss: 1 }],
  ['', {}],
  // time units (tc's list, case-insensitive) and exact decimals
  ['delay 1s', { delay: 1_000_000_000 }],
  ['delay 1sec', { delay: 1_000_000_000 }],
  ['delay 2secs', { delay: 2_000_000_000 }],
  ['delay 1.5s', { delay: 1_500_000_000 }],
  ['delay 100ms', { delay: 100_000_000 }],
  ['delay 2msec', { delay: 2_000_000 }],
  ['delay 3msecs', { delay: 3_000_000 }],
  ['delay 250us', { delay: 250_000 }],
  ['delay 250usec', { delay: 250_000 }],
  ['delay 7usecs', { delay: 7_000 }],
  ['delay 10ns', { delay: 10 }],
  ['delay 10nsec', { delay: 10 }],
  ['delay 10nsecs', { delay: 10 }],
  ['delay 100MS', { delay: 100_000_000 }],
  ['delay 1Sec', { delay: 1_000_000_000 }],
  ['delay 0.3ms', { delay: 300_000 }],
  ['delay .5ms', { delay: 500_000 }],
  ['delay 5.ms', { delay: 5_000_000 }],
  ['delay 0.000000001s', { delay: 1 }],
  ['delay 0s', { delay: 0 }],
  ['delay 9007199254740991ns', { delay: 9007199254740991 }],
  ['delay 1s 2147483647ns', { delay: 1_000_000_000, jitter: 2147483647 }],
  ['delay 1s 2.147483647s', { delay: 1_000_000_000, jitter: 2147483647 }],
  ['delay 100ms 10ms', { delay: 100_000_000, jitter: 10_000_000 }],
  ['delay 100ms 0ms', { delay: 100_000_000, jitter: 0 }],
  ['delay 0ms 0ms', { delay: 0, jitter: 0 }],
  ['delay 100ms 10ms 25%', { delay: 100_000_000, jitter: 10_000_000, delayCorrelation: 25 }],
  // distributions
  ['delay 10ms 1ms distribution normal', { delay: 10_000_000, jitter: 1_000_000, distribution: 'normal' }],
  ['delay 10ms 1ms distribution pareto', { delay: 10_000_000, jitter: 1_000_000, distribution: 'pareto' }],
  ['delay 10ms 1ms distribution paretonormal', { delay: 10_000_000, jitter: 1_000_000, distribution: 'paretonormal' }],
  ['delay 10ms 1ms distribution uniform', { delay: 10_000_000, jitter: 1_000_000, distribution: 'uniform' }],
  ['distribution normal delay 10ms 1ms', { distribution: 'normal', delay: 10_000_000, jitter: 1_000_000 }],
  // percentages: 0 to 100 inclusive, exactly as written
  ['loss 1%', { loss: 1 }],
  ['loss random 1%', { loss: 1 }],
  ['loss 1% 25%', { loss: 1, lossCorrelation: 25 }],
  ['loss random 0.5% 10%', { loss: 0.5, lossCorrelation: 10 }],
  ['loss 0%', { loss: 0 }],
  ['loss 100%', { loss: 100 }],
  ['loss 100.000%', { loss: 100 }],
  ['loss 0.0001%', { loss: 0.0001 }],
  ['loss .5%', { loss: 0.5 }],
  ['loss 5.%', { loss: 5 }],
  ['duplicate 0.1%', { duplicate: 0.1 }],
  ['duplicate 2% 100%', { duplicate: 2, duplicateCorrelation: 100 }],
  ['corrupt 0.01%', { corrupt: 0.01 }],
  ['corrupt 1% 0%', { corrupt: 1, corruptCorrelation: 0 }],
  ['delay 10ms reorder 25%', { delay: 10_000_000, reorder: 25 }],
  ['delay 10ms reorder 25% 50%', { delay: 10_000_000, reorder: 25, reorderCorrelation: 50 }],
  ['delay 10ms reorder 0%', { delay: 10_000_000, reorder: 0 }],
  ['delay 10ms reorder 25% gap 1', { delay: 10_000_000, reorder: 25, gap: 1 }],
  ['gap 4294967295 reorder 1% delay 1ms', { gap: 4294967295, reorder: 1, delay: 1_000_000 }],
  // rates: tc's unit table, case-insensitive, bps = BYTES per second; whole bytes per second kept
  ['rate 1000', { rate: 1000 }],
  ['rate 8bit', { rate: 8 }],
  ['rate 100bit', { rate: 96 }],
  ['rate 1kbit', { rate: 1000 }],
  ['rate 1kibit', { rate: 1024 }],
  ['rate 1Kibit', { rate: 1024 }],
  ['rate 1mbit', { rate: 1_000_000 }],
  ['rate 1Mbit', { rate: 1_000_000 }],
  ['rate 1mibit', { rate: 1_048_576 }],
  ['rate 1gbit', { rate: 1_000_000_000 }],
  ['rate 1gibit', { rate: 1_073_741_824 }],
  ['rate 1tbit', { rate: 1_000_000_000_000 }],
  ['rate 1tibit', { rate: 1_099_511_627_776 }],
  ['rate 1.5mbit', { rate: 1_500_000 }],
  ['rate 1bps', { rate: 8 }],
  ['rate 1Bps', { rate: 8 }],
  ['rate 1kbps', { rate: 8_000 }],
  ['rate 1kibps', { rate: 8_192 }],
  ['rate 1mbps', { rate: 8_000_000 }],
  ['rate 1Mbps', { rate: 8_000_000 }],
  ['rate 1mibps', { rate: 8_388_608 }],
  ['rate 1gbps', { rate: 8_000_000_000 }],
  ['rate 1gibps', { rate: 8_589_934_592 }],
  ['rate 1tbps', { rate: 8_000_000_000_000 }],
  ['rate 1tibps', { rate: 8_796_093_022_208 }],
  ['rate 9007199254740991bit', { rate: 9007199254740984 }],
  ['rate 1mbit 20', { rate: 1_000_000, packetOverhead: 20 }],
  ['rate 1mbit -4 53 5', { rate: 1_000_000, packetOverhead: -4, cellSize: 53, cellOverhead: 5 }],
  ['rate 1mbit -2147483648 4294967295 2147483647', { rate: 1_000_000, packetOverhead: -2147483648, cellSize: 4294967295, cellOverhead: 2147483647 }],
  ['rate 1mbit +7 0 -2147483648', { rate: 1_000_000, packetOverhead: 7, cellSize: 0, cellOverhead: -2147483648 }],
  ['limit 1', { limit: 1 }],
  ['limit 4294967295', { limit: 4294967295 }],
  ['loss 1% ecn', { loss: 1, ecn: true }],
  ['ecn loss 0.1%', { ecn: true, loss: 0.1 }],
];

t.test('valid annotations parse to exactly these netem options', async (t) => {
  for (const [text, options] of valid) {
    const r = parseNetem(A, text);
    t.strictSame(r, { ok: true, value: options }, JSON.stringify(text));
  }
});

t.test('every valid annotation is accepted by the qdisc API as it stands', async (t) => {
  for (const [text] of valid) {
    const r = parseNetem(A, text);
    if (!r.ok) throw new Error(`${text} did not parse`);
    // Non-uniform distributions need iproute2's tables from disk; their ranges are covered above.
    const { distribution, ...rest } = r.value;
    t.doesNotThrow(() => encodeNetem(distribution === 'uniform' ? r.value : rest), JSON.stringify(text));
  }
});

// [annotation, [token, column, message after "<annotation>: "]...]
const invalid: Array<[string, Array<[string, number, string]>]> = [
  ['loss 1.5x', [['1.5x', 6, `loss "1.5x" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss 1', [['1', 6, `loss "1" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss 0.5', [['0.5', 6, `loss "0.5" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss -1%', [['-1%', 6, `loss "-1%" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss 1%%', [['1%%', 6, `loss "1%%" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss %', [['%', 6, `loss "%" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss 1e2%', [['1e2%', 6, `loss "1e2%" at column 6: expected ${PERCENT_FORM}`]]],
  ['loss 100.0000001%', [['100.0000001%', 6, 'loss "100.0000001%" at column 6: expected a percentage from 0% to 100%']]],
  ['loss 150%', [['150%', 6, 'loss "150%" at column 6: expected a percentage from 0% to 100%']]],
  ['loss 1% 101%', [['101%', 9, 'loss correlation "101%" at column 9: expected a percentage from 0% to 100%']]],
  ['loss 1% 2.5', [['2.5', 9, `loss correlation "2.5" at column 9: expected ${PERCENT_FORM}`]]],
  ['duplicate x', [['x', 11, `duplicate "x" at column 11: expected ${PERCENT_FORM}`]]],
  ['duplicate 1% -3%', [['-3%', 14, `duplicate correlation "-3%" at column 14: expected ${PERCENT_FORM}`]]],
  ['corrupt 200%', [['200%', 9, 'corrupt "200%" at column 9: expected a percentage from 0% to 100%']]],
  ['corrupt 1% 1.0.0%', [['1.0.0%', 12, `corrupt correlation "1.0.0%" at column 12: expected ${PERCENT_FORM}`]]],
  ['delay 10ms reorder 25% 500%', [['500%', 24, 'reorder correlation "500%" at column 24: expected a percentage from 0% to 100%']]],
  ['loss state 1%', [['state', 6, 'loss "state" at column 6: expected loss [random] PERCENT [CORRELATION]; the 4-state and Gilbert-Elliott loss models are not supported']]],
  ['loss gemodel 1% 2% ecn', [['gemodel', 6, 'loss "gemodel" at column 6: expected loss [random] PERCENT [CORRELATION]; the 4-state and Gilbert-Elliott loss models are not supported']]],
  // times
  ['delay 100', [['100', 7, `delay "100" at column 7: expected ${TIME_FORM}`]]],
  ['delay 100m', [['100m', 7, `delay "100m" at column 7: expected ${TIME_FORM}`]]],
  ['delay 1h', [['1h', 7, `delay "1h" at column 7: expected ${TIME_FORM}`]]],
  ['delay 1e3ms', [['1e3ms', 7, `delay "1e3ms" at column 7: expected ${TIME_FORM}`]]],
  ['delay -5ms', [['-5ms', 7, `delay "-5ms" at column 7: expected ${TIME_FORM}`]]],
  ['delay ms', [['ms', 7, `delay "ms" at column 7: expected ${TIME_FORM}`]]],
  ['delay 1constructor', [['1constructor', 7, `delay "1constructor" at column 7: expected ${TIME_FORM}`]]],
  ['delay 1.5ns', [['1.5ns', 7, 'delay "1.5ns" at column 7: expected a time in whole nanoseconds, like 1.5ms or 250us']]],
  ['delay 9007199254740992ns', [['9007199254740992ns', 7, 'delay "9007199254740992ns" at column 7: expected a time from 0 to 9007199254740991ns']]],
  ['delay 1s 2147483648ns', [['2147483648ns', 10, 'jitter "2147483648ns" at column 10: expected a time from 0 to 2.147483647s (the kernel caps jitter there)']]],
  ['delay 1s 3s', [['3s', 10, 'jitter "3s" at column 10: expected a time from 0 to 2.147483647s (the kernel caps jitter there)']]],
  ['delay 1s 10xs', [['10xs', 10, `jitter "10xs" at column 10: expected ${TIME_FORM}`]]],
  ['delay 1s 10ms 25', [['25', 15, `delay correlation "25" at column 15: expected ${PERCENT_FORM}`]]],
  // dependencies between keywords
  ['delay 0ms 10ms', [['10ms', 11, 'jitter "10ms" at column 11: expected a delay above 0 before it, like delay 100ms 10ms']]],
  ['delay 10ms distribution normal', [['normal', 25, 'distribution "normal" at column 25: expected a delay with a jitter above 0 (delay TIME JITTER), like delay 100ms 10ms distribution normal']]],
  ['delay 10ms 0ms distribution uniform', [['uniform', 29, 'distribution "uniform" at column 29: expected a delay with a jitter above 0 (delay TIME JITTER), like delay 100ms 10ms distribution normal']]],
  ['distribution pareto', [['pareto', 14, 'distribution "pareto" at column 14: expected a delay with a jitter above 0 (delay TIME JITTER), like delay 100ms 10ms distribution normal']]],
  ['delay 10ms 1ms distribution gaussian', [['gaussian', 29, 'distribution "gaussian" at column 29: expected one of normal, pareto, paretonormal, uniform']]],
  ['delay 10ms 1ms distribution Normal', [['Normal', 29, 'distribution "Normal" at column 29: expected one of normal, pareto, paretonormal, uniform']]],
  ['reorder 25%', [['25%', 9, 'reorder "25%" at column 9: expected a delay above 0 as well (reordering sends some packets at once and delays the rest), like delay 10ms reorder 25%']]],
  ['delay 0s reorder 25%', [['25%', 18, 'reorder "25%" at column 18: expected a delay above 0 as well (reordering sends some packets at once and delays the rest), like delay 10ms reorder 25%']]],
  ['gap 5', [['5', 5, 'gap "5" at column 5: expected a reorder percentage above 0 as well, like delay 10ms reorder 25% gap 5']]],
  ['delay 10ms reorder 0% gap 5', [['5', 27, 'gap "5" at column 27: expected a reorder percentage above 0 as well, like delay 10ms reorder 25% gap 5']]],
  ['delay 10ms reorder 5% gap 0', [['0', 27, `gap "0" at column 27: expected ${PACKETS_FORM}`]]],
  ['delay 10ms reorder 5% gap 4294967296', [['4294967296', 27, `gap "4294967296" at column 27: expected ${PACKETS_FORM}`]]],
  ['delay 10ms reorder 5% gap 1.5', [['1.5', 27, `gap "1.5" at column 27: expected ${PACKETS_FORM}`]]],
  ['ecn', [['ecn', 1, '"ecn" at column 1 needs a loss above 0 (ecn marks the packets loss would drop), like loss 1% ecn']]],
  ['loss 0% ecn', [['ecn', 9, '"ecn" at column 9 needs a loss above 0 (ecn marks the packets loss would drop), like loss 1% ecn']]],
  // rates and their overheads
  ['rate 7bit', [['7bit', 6, 'rate "7bit" at column 6: expected a rate from 8bit to 9007199254740991bit']]],
  ['rate 0', [['0', 6, 'rate "0" at column 6: expected a rate from 8bit to 9007199254740991bit']]],
  ['rate 9007199254740992bit', [['9007199254740992bit', 6, 'rate "9007199254740992bit" at column 6: expected a rate from 8bit to 9007199254740991bit']]],
  ['rate 10%', [['10%', 6, `rate "10%" at column 6: expected ${RATE_FORM}; a percentage of the link speed is not supported`]]],
  ['rate 10mb', [['10mb', 6, `rate "10mb" at column 6: expected ${RATE_FORM}`]]],
  // "10" alone is 10 bit/s (tc's bare rate), so only the stray unit is wrong
  ['rate 10 mbit', [['mbit', 9, `"mbit" at column 9 is not a netem keyword: expected one of ${KEYWORDS}`]]],
  ['rate 1mbit 1.5', [['1.5', 12, `packet overhead "1.5" at column 12: expected ${SIGNED_FORM}`]]],
  ['rate 1mbit -2147483649', [['-2147483649', 12, `packet overhead "-2147483649" at column 12: expected ${SIGNED_FORM}`]]],
  ['rate 1mbit 0 -1', [['-1', 14, 'cell size "-1" at column 14: expected a whole number of bytes from 0 to 4294967295']]],
  ['rate 1mbit 0 4294967296', [['4294967296', 14, 'cell size "4294967296" at column 14: expected a whole number of bytes from 0 to 4294967295']]],
  ['rate 1mbit 0 53 2147483648', [['2147483648', 17, `cell overhead "2147483648" at column 17: expected ${SIGNED_FORM}`]]],
  ['limit 0', [['0', 7, `limit "0" at column 7: expected ${PACKETS_FORM}`]]],
  ['limit 4294967296', [['4294967296', 7, `limit "4294967296" at column 7: expected ${PACKETS_FORM}`]]],
  ['limit 0x10', [['0x10', 7, `limit "0x10" at column 7: expected ${PACKETS_FORM}`]]],
  ['limit 1000p', [['1000p', 7, `limit "1000p" at column 7: expected ${PACKETS_FORM}`]]],
  // keywords: missing values, unknown words, repeats
  ['delay', [['delay', 1, `"delay" at column 1 needs a value: expected ${TIME_FORM}`]]],
  ['delay loss 1%', [['delay', 1, `"delay" at column 1 needs a value: expected ${TIME_FORM}`]]],
  ['loss random', [['loss', 1, `"loss" at column 1 needs a value: expected ${PERCENT_FORM}`]]],
  ['rate', [['rate', 1, `"rate" at column 1 needs a value: expected ${RATE_FORM}`]]],
  ['distribution', [['distribution', 1, '"distribution" at column 1 needs a value: expected one of normal, pareto, paretonormal, uniform']]],
  ['limit gap', [['limit', 1, `"limit" at column 1 needs a value: expected ${PACKETS_FORM}`], ['gap', 7, `"gap" at column 7 needs a value: expected ${PACKETS_FORM}`]]],
  ['loss 1% loss 2%', [['loss', 9, '"loss" at column 9 repeats the one at column 1: each keyword may be given once']]],
  ['ecn loss 1% ecn', [['ecn', 13, '"ecn" at column 13 repeats the one at column 1: each keyword may be given once']]],
  ['latency 10ms', [['latency', 1, `"latency" at column 1 is not a netem keyword (write delay): expected one of ${KEYWORDS}`]]],
  ['drop 1%', [['drop', 1, `"drop" at column 1 is not a netem keyword (write loss): expected one of ${KEYWORDS}`]]],
  ['slot 1ms 2ms', [['slot', 1, `"slot" at column 1 is not a netem keyword (slot is not supported by nodenet): expected one of ${KEYWORDS}`]]],
  ['Delay 10ms', [['Delay', 1, `"Delay" at column 1 is not a netem keyword: expected one of ${KEYWORDS}`]]],
  ['del 10ms', [['del', 1, `"del" at column 1 is not a netem keyword: expected one of ${KEYWORDS}`]]],
  ['constructor 1', [['constructor', 1, `"constructor" at column 1 is not a netem keyword: expected one of ${KEYWORDS}`]]],
  ['delay 10ms "loss" 1%', [['"loss"', 12, `"\\"loss\\"" at column 12 is not a netem keyword: expected one of ${KEYWORDS}`]]],
  // several problems: all reported, in column order
  [
    'delay 0ms 10ms reorder 5% gap 2 ecn foo 1 2 loss',
    [
      ['10ms', 11, 'jitter "10ms" at column 11: expected a delay above 0 before it, like delay 100ms 10ms'],
      ['5%', 24, 'reorder "5%" at column 24: expected a delay above 0 as well (reordering sends some packets at once and delays the rest), like delay 10ms reorder 25%'],
      ['foo', 37, `"foo" at column 37 is not a netem keyword: expected one of ${KEYWORDS}`],
      ['loss', 45, `"loss" at column 45 needs a value: expected ${PERCENT_FORM}`],
    ],
  ],
];

t.test('malformed and out-of-range annotations: the token, its column and the accepted form', async (t) => {
  for (const [text, expected] of invalid) {
    const r = parseNetem(A, text);
    t.strictSame(
      r,
      { ok: false, errors: expected.map(([token, column, detail]) => ({ annotation: A, token, column, message: `${A}: ${detail}` })) },
      JSON.stringify(text),
    );
  }
});

t.test('the kernel-side limits match the qdisc API: one past each accepted boundary is refused by both', async (t) => {
  t.throws(() => encodeNetem({ delay: 9007199254740992 }), 'the API refuses a delay past a safe integer');
  t.throws(() => encodeNetem({ limit: 0 }), 'the API refuses limit 0');
  t.throws(() => encodeNetem({ limit: 4294967296 }), 'the API refuses limit past u32');
  t.throws(() => encodeNetem({ loss: 100.0000001 }), 'the API refuses a percentage past 100');
  t.throws(() => encodeNetem({ jitter: 1000 }), 'the API refuses jitter without delay');
  t.throws(() => encodeNetem({ reorder: 5 }), 'the API refuses reorder without delay');
});
