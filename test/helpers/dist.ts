// The compiled package (dist/), for tests that run nodenet in a child process as users would.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/** Absolute path of a compiled file under dist/; throws if the build has not run. */
export function distEntry(relative: string): string {
  const path = join(root, 'dist', relative);
  if (!existsSync(path)) throw new Error(`${path} is missing: run "npm run build:source" first`);
  return path;
}

export const repoRoot = root;
