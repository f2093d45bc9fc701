// Kernel work runs on nodenet's own threads: with libuv's pool fully blocked, kernel calls still
// complete.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { runAllowingFailure } from '../helpers/exec.js';
import { distEntry } from '../helpers/dist.js';
import { makeNetns } from '../helpers/netns.js';

t.test('links.list completes while every libuv pool thread is blocked', async (t) => {
  const ns = await makeNetns(t);
  const fifo = join(mkdtempSync(join(tmpdir(), 'nodenet-uv-')), 'block');
  await runAllowingFailure('mkfifo', [fifo]);
  const script = `
    import { open } from 'node:fs/promises';
    import { openSync, writeSync, closeSync } from 'node:fs';
    const { links } = await import(${JSON.stringify(distEntry('lib/kernel/index.js'))});
    // Opening a FIFO for reading blocks a pool thread until a writer appears.
    const blocked = open(${JSON.stringify(fifo)}, 'r');
    await new Promise((r) => setTimeout(r, 200));
    const list = await links.list({ netns: ${JSON.stringify(ns.path)} });
    console.log(JSON.stringify({ names: list.map((l) => l.name) }));
    const w = openSync(${JSON.stringify(fifo)}, 'w'); writeSync(w, 'x'); closeSync(w);
    await (await blocked).close();`;
  const result = await runAllowingFailure(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
  });
  t.equal(result.code, 0, result.stderr);
  t.same(JSON.parse(result.stdout), { names: ['lo'] });
});
