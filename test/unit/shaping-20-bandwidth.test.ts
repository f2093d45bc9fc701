// kubernetes.io/{egress,ingress}-bandwidth: apimachinery's quantity parsing and Value() rounding,
// kubelet's 1k..1P bounds, and the tbf each rate becomes (burst and limit rule).
import t from 'tap';

import { decodeTbf, encodeTbf } from '../../lib/kernel/qdiscs/tbf.js';
import { bandwidthTbf, parseBandwidth, quantityValue } from '../../lib/model/shaping/index.js';

const A = 'kubernetes.io/egress-bandwidth';
const FORM = 'bits per second as a Kubernetes quantity, like 500k, 10M, 1G or 100Mi (k, M, G, T, P, E are powers of 1000; Ki, Mi, Gi, Ti, Pi, Ei powers of 1024)';
const INT64_MAX = (1n << 63n) - 1n;

// resource.MustParse(s).Value(), as apimachinery computes it.
const values: Array<[string, bigint]> = [
  ['10M', 10_000_000n],
  ['1G', 1_000_000_000n],
  ['500k', 500_000n],
  ['1k', 1_000n],
  ['1T', 1_000_000_000_000n],
  ['1P', 1_000_000_000_000_000n],
  ['1E', 1_000_000_000_000_000_000n],
  ['1Ki', 1024n],
  ['100Mi', 104_857_600n],
  ['1Gi', 1_073_741_824n],
  ['1Ti', 1_099_511_627_776n],
  ['1Pi', 1_125_899_906_842_624n],
  ['1Ei', 1_152_921_504_606_846_976n],
  ['1.5Ki', 1536n],
  ['0.1Ki', 103n], // 102.4, rounded up
  ['12345', 12_345n],
  ['1.5k', 1_500n],
  ['.5k', 500n],
  ['1.G', 1_000_000_000n],
  ['+10M', 10_000_000n],
  ['007M', 7_000_000n],
  ['1e3', 1_000n],
  ['1E3', 1_000n],
  ['1e+3', 1_000n],
  ['25e-1', 3n], // 2.5, rounded up
  ['1e-3', 1n],
  ['1500m', 2n], // milli, not mega: 1.5, rounded up
  ['1000000m', 1_000n],
  ['1u', 1n],
  ['1n', 1n],
  ['999.5', 1_000n],
  ['0.5', 1n],
  ['-1k', -1_000n],
  ['-0.5', -1n],
  ['0', 0n],
  ['00', 0n],
  ['-0', 0n],
  ['0M', 0n],
  ['M', 0n],
  ['.', 0n],
  ['+', 0n],
  ['9223372036854775807', INT64_MAX],
  ['9223372036854775808', INT64_MAX], // capped, as maxAllowed caps it
  ['1e19', INT64_MAX],
  ['10E', INT64_MAX],
  ['1e99999', INT64_MAX],
  ['1e-99999', 1n],
  ['1e4294967299', 1_000n], // the exponent is converted to int32, wrapping to 3
];

t.test('quantity values are apimachinery Value()s', async (t) => {
  for (const [text, value] of values) t.strictSame(quantityValue(text), { value }, text);
});

const refused: Array<[string, 'format' | 'suffix']> = [
  ['', 'format'],
  ['1K', 'suffix'],
  ['1kb', 'format'],
  ['10Mbps', 'format'],
  ['1e', 'suffix'],
  ['1Mi3', 'suffix'],
  ['1mi', 'suffix'],
  ['0K', 'suffix'],
  ['1e99999999999999999999', 'suffix'],
  [' 1M', 'format'],
  ['1M ', 'format'],
  ['1 M', 'format'],
  ['1,000', 'format'],
  ['1e3.5', 'format'],
  ['0x10', 'format'],
  ['1.2.3', 'format'],
  ['--1', 'suffix'], // a sign, then "-1" read as a suffix
  ['ten', 'format'],
];

t.test('strings ParseQuantity refuses', async (t) => {
  for (const [text, error] of refused) t.strictSame(quantityValue(text), { error }, JSON.stringify(text));
});

t.test('kubelet bounds: 1k to 1P bits/s after rounding up', async (t) => {
  const ok: Array<[string, number]> = [
    ['1k', 1000],
    ['1000', 1000],
    ['999.5', 1000],
    ['10M', 10_000_000],
    ['100Mi', 104_857_600],
    ['1P', 1e15],
    ['1000T', 1e15],
  ];
  for (const [text, bits] of ok) t.strictSame(parseBandwidth(A, text), { ok: true, value: bits }, text);

  const err = (text: string, detail: string) => ({ ok: false, errors: [{ annotation: A, token: text, column: null, message: `${A}: ${detail}` }] });
  const below = (text: string) => err(text, `${JSON.stringify(text)} is below 1k: expected ${FORM}, from 1k (1000 bits/s) to 1P`);
  const above = (text: string) => err(text, `${JSON.stringify(text)} is above 1P: expected ${FORM}, from 1k to 1P (10^15 bits/s)`);
  const notQuantity = (text: string) => err(text, `${JSON.stringify(text)} is not a quantity: expected ${FORM}`);
  const bad: Array<[string, object]> = [
    ['999', below('999')],
    ['0.999k', below('0.999k')],
    ['1500m', below('1500m')],
    ['0', below('0')],
    ['-10M', below('-10M')],
    ['1000000000000001', above('1000000000000001')],
    ['1.0000000000000001P', above('1.0000000000000001P')],
    ['2P', above('2P')],
    ['1Pi', above('1Pi')],
    ['1E', above('1E')],
    ['', notQuantity('')],
    ['10Mbit', notQuantity('10Mbit')],
    ['1K', notQuantity('1K')],
    ['10 M', notQuantity('10 M')],
  ];
  for (const [text, expected] of bad) t.strictSame(parseBandwidth(A, text), expected, JSON.stringify(text));
});

t.test('the tbf of a cap: rate in whole bytes, burst max(10 ms, 65553 B), limit rate × 25 ms + burst', async (t) => {
  const table: Array<[number, { rate: number; burst: number; limit: number }]> = [
    [1000, { rate: 1000, burst: 65553, limit: 65556 }], // 125 B/s: 3 bytes of queue on the burst
    [1001, { rate: 1000, burst: 65553, limit: 65556 }], // whole bytes per second
    [10_000_000, { rate: 10_000_000, burst: 65553, limit: 96803 }],
    [52_442_400, { rate: 52_442_400, burst: 65553, limit: 229_435 }], // 10 ms is exactly the floor
    [52_442_408, { rate: 52_442_408, burst: 65554, limit: 229_436 }], // one byte/s more: 10 ms wins, rounded up
    [1_000_000_000, { rate: 1_000_000_000, burst: 1_250_000, limit: 4_375_000 }],
    [1_000_000_000_000, { rate: 1_000_000_000_000, burst: 1_250_000_000, limit: 4_294_967_295 }], // limit held to u32
    [1e15, { rate: 1e15, burst: 4_294_967_295, limit: 4_294_967_295 }], // both held to u32
  ];
  for (const [bits, tbf] of table) t.strictSame(bandwidthTbf(bits), tbf, `${bits} bit/s`);
});

t.test('every tbf is accepted by the qdisc API and reads back the same rate and limit', async (t) => {
  for (const bits of [1000, 10_000_000, 52_442_408, 1_000_000_000, 1_000_000_000_000, 1e15]) {
    const tbf = bandwidthTbf(bits);
    const report = decodeTbf(encodeTbf(tbf));
    t.equal(report.rate, tbf.rate, `${bits}: rate`);
    t.equal(report.limit, tbf.limit, `${bits}: limit`);
  }
});
