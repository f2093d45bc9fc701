// The compiled package (dist/), for tests that run nodenet in a child process as users would.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

// The checkout's root: the nearest folder up holding package.json. Tests run from test/helpers,
// the benchmarks from their compiled copy in dist/test/helpers; both must find the same root.
function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

const root = findRoot(import.meta.dirname);

/** Absolute path of a compiled file under dist/; throws if the build has not run. */
export function distEntry(relative: string): string {
  const path = join(root, 'dist', relative);
  if (!existsSync(path)) throw new Error(`${path} is missing: run "npm run build:source" first`);
  return path;
}

export const repoRoot = root;
