// The agent never forks. Anything under lib/ that could start a process fails this test.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import t from 'tap';

import { repoRoot } from '../helpers/dist.js';

const FORBIDDEN = [
  /\bchild_process\b/,
  /\bworker_threads\b.*\beval\b/,
  /\bexeca\b/,
  /\bcross-spawn\b/,
  /\bprocess\.binding\(\s*['"]spawn_sync['"]/,
  /\bprocess\.dlopen\b/,
];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.(ts|js|mjs|cjs)$/.test(name) ? [path] : [];
  });
}

t.test('no file under lib/ can start a process', async (t) => {
  const files = sources(join(repoRoot, 'lib'));
  t.ok(files.length > 10, `scanned ${files.length} files`);
  const offenders = files.flatMap((file) => {
    const text = readFileSync(file, 'utf8');
    return FORBIDDEN.filter((re) => re.test(text)).map((re) => `${relative(repoRoot, file)}: ${re}`);
  });
  t.same(offenders, [], 'no process-spawning module or call');
});

t.test('the scan itself catches a fork', async (t) => {
  const sample = "import { execFile } from 'node:child_process';";
  t.ok(FORBIDDEN.some((re) => re.test(sample)));
});
