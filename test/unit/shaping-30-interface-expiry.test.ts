// nodenet.io/interface (the kernel's dev_valid_name) and nodenet.io/shaping-expires (RFC 3339 or a
// Go duration from when shaping was first applied).
import t from 'tap';

import { expiryTime, parseExpiry, parseGoDuration, parseInterfaceName, parseRfc3339 } from '../../lib/model/shaping/index.js';

const I = 'nodenet.io/interface';
const IFORM = 'a Linux interface name like eth0 or net1: 1 to 15 bytes, not "." or "..", without "/", ":", whitespace or NUL';

t.test('interface names the kernel accepts', async (t) => {
  for (const name of ['eth0', 'net1', 'abcdefghijklmno', 'ééééééé', 'ＡＢＣＤＥ', '...', '%d', 'a-b_c.d', 'x', '\ud800']) {
    t.strictSame(parseInterfaceName(I, name), { ok: true, value: name }, JSON.stringify(name));
  }
});

t.test('interface names the kernel refuses, with the reason', async (t) => {
  const table: Array<[string, string]> = [
    ['', 'is empty'],
    ['abcdefghijklmnop', 'is 16 bytes long'],
    ['éééééééé', 'is 16 bytes long'],
    ['ＡＢＣＤＥＦ', 'is 18 bytes long'],
    ['😀😀😀😀', 'is 16 bytes long'],
    ['.', 'is a path component'],
    ['..', 'is a path component'],
    ['a/b', 'contains "/"'],
    ['eth0:1', 'contains ":"'],
    ['eth 0', 'contains whitespace'],
    ['eth\t0', 'contains whitespace'],
    ['eth0\n', 'contains whitespace'],
    ['eth\v0', 'contains whitespace'],
    ['là', 'contains whitespace'], // à is C3 A0, and the kernel's isspace() says 0xA0 is a space
    ['a\u0000b', 'contains a NUL'],
  ];
  for (const [name, problem] of table) {
    t.strictSame(
      parseInterfaceName(I, name),
      { ok: false, errors: [{ annotation: I, token: name, column: null, message: `${I}: ${JSON.stringify(name)} ${problem}: expected ${IFORM}` }] },
      JSON.stringify(name),
    );
  }
});

t.test('Go durations, as time.ParseDuration reads them', async (t) => {
  const table: Array<[string, bigint | null]> = [
    ['90s', 90_000_000_000n],
    ['1h30m', 5_400_000_000_000n],
    ['1h30m15s', 5_415_000_000_000n],
    ['500ms', 500_000_000n],
    ['1.5h', 5_400_000_000_000n],
    ['.5s', 500_000_000n],
    ['1.s', 1_000_000_000n],
    ['1us', 1_000n],
    ['1\u00b5s', 1_000n],
    ['1\u03bcs', 1_000n],
    ['1ns', 1n],
    ['0.0000000015s', 1n], // truncated, as Go truncates
    ['0', 0n],
    ['-0', 0n],
    ['+5s', 5_000_000_000n],
    ['-5s', -5_000_000_000n],
    ['0s', 0n],
    ['2562047h47m16.854775807s', (1n << 63n) - 1n],
    ['-2562047h47m16.854775808s', -(1n << 63n)],
    ['2562047h47m16.854775808s', null], // overflows time.Duration
    ['', null],
    ['5', null],
    ['s', null],
    ['.s', null],
    ['1 h', null],
    ['1d', null],
    ['1H', null],
    ['1h-5m', null],
    ['1h5', null],
    ['constructor', null],
    ['1constructor', null],
  ];
  for (const [text, ns] of table) t.equal(parseGoDuration(text), ns, JSON.stringify(text));
});

t.test('RFC 3339 times, to the millisecond (rounded up)', async (t) => {
  const table: Array<[string, string | null]> = [
    ['2030-01-02T15:04:05Z', '2030-01-02T15:04:05.000Z'],
    ['2030-01-02t15:04:05z', '2030-01-02T15:04:05.000Z'],
    ['2030-01-02T17:04:05+02:00', '2030-01-02T15:04:05.000Z'],
    ['2030-01-02T09:34:05-05:30', '2030-01-02T15:04:05.000Z'],
    ['2030-01-01T00:30:00+01:00', '2029-12-31T23:30:00.000Z'],
    ['2030-01-02T15:04:05.5Z', '2030-01-02T15:04:05.500Z'],
    ['2030-01-02T15:04:05.0001Z', '2030-01-02T15:04:05.001Z'],
    ['2030-01-02T15:04:05.123456789Z', '2030-01-02T15:04:05.124Z'],
    ['2030-01-02T15:04:05.000Z', '2030-01-02T15:04:05.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
    ['2000-02-29T23:59:59Z', '2000-02-29T23:59:59.000Z'],
    ['1970-01-01T00:00:00Z', '1970-01-01T00:00:00.000Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ['0099-12-31T00:00:00Z', '0099-12-31T00:00:00.000Z'],
    ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59.000Z'],
    ['2023-02-29T00:00:00Z', null],
    ['2100-02-29T00:00:00Z', null],
    ['2030-04-31T00:00:00Z', null],
    ['2030-13-01T00:00:00Z', null],
    ['2030-00-01T00:00:00Z', null],
    ['2030-01-00T00:00:00Z', null],
    ['2030-01-02T24:00:00Z', null],
    ['2030-01-02T15:60:00Z', null],
    ['2030-01-02T15:04:60Z', null],
    ['2030-01-02T15:04:05+24:00', null],
    ['2030-01-02T15:04:05+02:60', null],
    ['2030-01-02T15:04:05', null],
    ['2030-01-02 15:04:05Z', null],
    ['2030-01-02T15:04:05.Z', null],
    ['2030-01-02T15:04Z', null],
    ['2030-1-2T15:04:05Z', null],
    ['2030-01-02T15:04:05+0200', null],
    ['2030-01-02', null],
  ];
  for (const [text, iso] of table) t.equal(parseRfc3339(text)?.toISOString() ?? null, iso, text);
});

t.test('parseExpiry: either form, and the errors', async (t) => {
  const E = 'nodenet.io/shaping-expires';
  const FORM =
    'an RFC 3339 time like 2030-01-02T15:04:05Z or 2030-01-02T17:04:05+02:00, or a duration from when the shaping was applied like 90s, 1h30m or 500ms (units ns, us, ms, s, m, h)';
  const time = parseExpiry(E, '2030-01-02T15:04:05Z');
  t.equal(time.ok && time.value.kind === 'time' ? time.value.at.toISOString() : null, '2030-01-02T15:04:05.000Z');
  t.strictSame(parseExpiry(E, '1h30m'), { ok: true, value: { kind: 'duration', nanoseconds: 5_400_000_000_000n } });
  t.strictSame(parseExpiry(E, '0'), { ok: true, value: { kind: 'duration', nanoseconds: 0n } });
  t.strictSame(parseExpiry(E, 'soon'), { ok: false, errors: [{ annotation: E, token: 'soon', column: null, message: `${E}: "soon" is neither a time nor a duration: expected ${FORM}` }] });
  t.strictSame(parseExpiry(E, '90'), { ok: false, errors: [{ annotation: E, token: '90', column: null, message: `${E}: "90" is neither a time nor a duration: expected ${FORM}` }] });
  t.strictSame(parseExpiry(E, '-1h'), { ok: false, errors: [{ annotation: E, token: '-1h', column: null, message: `${E}: "-1h" is a negative duration: expected ${FORM}` }] });
});

t.test('expiryTime: absolute, or appliedAt plus the duration rounded up to a millisecond', async (t) => {
  const applied = new Date('2030-01-01T00:00:00.000Z');
  const at = new Date('2031-05-05T05:05:05.005Z');
  t.equal(expiryTime({ kind: 'time', at }, applied).toISOString(), '2031-05-05T05:05:05.005Z');
  t.not(expiryTime({ kind: 'time', at }, applied), at, 'a new Date, not the parsed one');
  t.equal(expiryTime({ kind: 'duration', nanoseconds: 90_000_000_000n }, applied).toISOString(), '2030-01-01T00:01:30.000Z');
  t.equal(expiryTime({ kind: 'duration', nanoseconds: 1n }, applied).toISOString(), '2030-01-01T00:00:00.001Z');
  t.equal(expiryTime({ kind: 'duration', nanoseconds: 1_000_000n }, applied).toISOString(), '2030-01-01T00:00:00.001Z');
  t.equal(expiryTime({ kind: 'duration', nanoseconds: 1_000_001n }, applied).toISOString(), '2030-01-01T00:00:00.002Z');
  t.equal(expiryTime({ kind: 'duration', nanoseconds: 0n }, applied).toISOString(), '2030-01-01T00:00:00.000Z');
});
