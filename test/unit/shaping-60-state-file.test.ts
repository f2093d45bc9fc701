// The applied-times file: survives a restart (a new AppliedTimes reading it), forgets pods that are
// gone, shrugs off a missing or corrupt file (logged), and never leaves a half-written file.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { AppliedTimes } from '../../lib/controller/shaping/state-file.js';

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'nodenet-state-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('written, read back by the next agent, pruned', async (t) => {
  const path = join(dir(t), 'sub', 'shaping.json');
  const warnings: string[] = [];
  const log = { warn: (_: object, m: string) => void warnings.push(m) };
  const first = new AppliedTimes(path, log);
  await first.load();
  t.equal(first.get('a'), null, 'a missing file is an empty start');
  first.set('a', new Date('2026-12-03T10:00:00Z'));
  first.set('b', new Date('2026-12-03T11:00:00Z'));
  await first.flush();
  t.same(JSON.parse(readFileSync(path, 'utf8')), { appliedAt: { a: '2026-12-03T10:00:00.000Z', b: '2026-12-03T11:00:00.000Z' } });

  const second = new AppliedTimes(path, log);
  await second.load();
  t.same(second.get('a'), new Date('2026-12-03T10:00:00Z'), 'the next agent knows when a began');
  second.retain(new Set(['b']));
  second.set('b', null);
  await second.flush();
  t.same(JSON.parse(readFileSync(path, 'utf8')), { appliedAt: {} }, 'gone pods forgotten');
  t.same(readdirSync(join(path, '..')), ['shaping.json'], 'no temporary file left');
  t.same(warnings, []);
});

t.test('a corrupt file is logged and ignored; no file at all with a null path', async (t) => {
  const path = join(dir(t), 'shaping.json');
  writeFileSync(path, '{"appliedAt": {"a": "not a time", "b": "2026-12-03T10:00:00Z"');
  const warnings: string[] = [];
  const times = new AppliedTimes(path, { warn: (_: object, m: string) => void warnings.push(m) });
  await times.load();
  t.equal(times.get('b'), null);
  t.match(warnings, [/not valid JSON/]);

  writeFileSync(path, '{"appliedAt": {"a": "not a time", "b": "2026-12-03T10:00:00Z"}}');
  const partial = new AppliedTimes(path, { warn: () => {} });
  await partial.load();
  t.equal(partial.get('a'), null, 'an unparsable time is skipped');
  t.same(partial.get('b'), new Date('2026-12-03T10:00:00Z'), 'the rest is kept');

  const memory = new AppliedTimes(null, { warn: () => {} });
  await memory.load();
  memory.set('x', new Date(0));
  await memory.flush();
  t.same(memory.get('x'), new Date(0), 'in memory only');
});
