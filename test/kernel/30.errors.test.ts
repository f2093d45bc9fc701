// Failures reach the caller as KernelErrors that name the operation, the object, the namespace
// and the errno, never as a crash.
import { mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { isKernelError, links, netfilter } from '../../lib/kernel/index.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns } from '../helpers/netns.js';
import { distEntry } from '../helpers/dist.js';

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

t.test('an unknown netns path', async (t) => {
  const path = '/var/run/netns/nodenet-no-such-namespace';
  for (const [op, call] of [
    ['links.list', () => links.list({ netns: path })],
    ['netfilter.read', () => netfilter.read({ netns: path, table: 'filter' })],
    ['netfilter.tables', () => netfilter.tables({ netns: path })],
  ] as const) {
    const error = await rejection(call());
    t.ok(isKernelError(error), `${op}: a KernelError`);
    if (!isKernelError(error)) continue;
    t.equal(error.code, 'ENOENT');
    t.equal(error.errno, 2);
    t.equal(error.op, op);
    t.equal(error.object, `netns ${path}`);
    t.equal(error.netns, path);
    t.equal(error.message, `${op} netns ${path}: cannot open network namespace: No such file or directory (ENOENT)`);
  }
});

t.test('a path that is not a network namespace', async (t) => {
  const error = await rejection(links.list({ netns: '/proc/self/ns/uts' }));
  t.ok(isKernelError(error));
  if (!isKernelError(error)) return;
  t.equal(error.code, 'EINVAL');
  t.match(error.message, /not a network namespace/);
});

t.test('bad arguments are TypeErrors, not kernel errors', async (t) => {
  await t.rejects(netfilter.read({ table: 'filter', family: 'ipv5' as never }), TypeError);
  await t.rejects(netfilter.read({ table: '' }), RangeError);
  await t.rejects(netfilter.read({ table: 'x'.repeat(40) }), RangeError);
  await t.rejects(links.list({ netns: 42 as never }), TypeError);
});

t.test('a caller without privileges gets a clear error, not a crash', async (t) => {
  const ns = await makeNetns(t);
  const dir = mkdtempSync(join(tmpdir(), 'nodenet-nobody-'));
  chmodSync(dir, 0o755);
  const script = `
    const { links, netfilter } = await import(${JSON.stringify(distEntry('lib/kernel/index.js'))});
    const out = {};
    for (const [name, call] of Object.entries({
      rules: () => netfilter.read({ table: 'filter' }),
      enter: () => links.list({ netns: ${JSON.stringify(ns.path)} }),
      own: () => links.list(),
    })) {
      try { const r = await call(); out[name] = { ok: Array.isArray(r) ? r.length : true }; }
      catch (e) { out[name] = { code: e.code, op: e.op, message: e.message, kernel: e.name }; }
    }
    console.log(JSON.stringify(out));`;
  const result = await runAllowingFailure(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, cwd: dir });
  t.equal(result.code, 0, `exits normally: ${result.stderr}`);
  const out = JSON.parse(result.stdout) as Record<string, { code?: string; op?: string; message?: string; kernel?: string; ok?: unknown }>;
  t.match(out.rules, { code: /^(EACCES|EPERM)$/, op: 'netfilter.read', kernel: 'KernelError', message: /needs CAP_NET_ADMIN/ });
  t.match(out.enter, { code: 'EPERM', op: 'links.list', kernel: 'KernelError', message: /needs CAP_SYS_ADMIN/ });
  t.ok(out.own?.ok, 'reading links of its own namespace needs no privilege');
});
