// What `npm publish` would upload: both prebuilds in node-gyp-build's layout, built from this
// checkout's sources, the type declarations of every module, and nothing of the tests or builds.
// The README's glibc floor and runtime library list are the ones the binaries really have.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { addonBuilds, requireArtifact } from '../helpers/artifacts.js';
import { repoRoot } from '../helpers/dist.js';
import { run } from '../helpers/exec.js';

const prebuilds = {
  x64: join(repoRoot, 'prebuilds', 'linux-x64', 'nodenet.napi.glibc.node'),
  arm64: join(repoRoot, 'prebuilds', 'linux-arm64', 'nodenet.napi.glibc.node'),
};
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

function buildId(readelfNotes: string): string {
  const m = /Build ID: ([0-9a-f]+)/.exec(readelfNotes);
  if (!m?.[1]) throw new Error('no GNU build id');
  return m[1];
}

/** The highest version of each versioned-symbol family (GLIBC, GLIBCXX) a binary asks for. */
function highestVersions(dynamicSymbols: string): Record<string, string> {
  const highest: Record<string, number[]> = {};
  for (const m of dynamicSymbols.matchAll(/\b(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)\b/g)) {
    const family = m[1] as string;
    const version = (m[2] as string).split('.').map(Number);
    const current = highest[family];
    if (!current || compare(version, current) > 0) highest[family] = version;
  }
  return Object.fromEntries(Object.entries(highest).map(([k, v]) => [k, v.join('.')]));
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

t.test('file says x86-64 and aarch64, both stripped', async (t) => {
  t.match(await run('file', ['-L', requireArtifact(prebuilds.x64)]), /ELF 64-bit LSB shared object, x86-64.*, stripped/);
  t.match(await run('file', ['-L', requireArtifact(prebuilds.arm64)]), /ELF 64-bit LSB shared object, ARM aarch64.*, stripped/);
});

t.test('the prebuilds are the builds of this checkout (same GNU build id as cmake-js made)', async (t) => {
  t.equal(buildId(await run('readelf', ['-n', prebuilds.x64])), buildId(await run('readelf', ['-n', requireArtifact(addonBuilds.cmake)])));
  t.equal(buildId(await run('aarch64-linux-gnu-readelf', ['-n', prebuilds.arm64])), buildId(await run('aarch64-linux-gnu-readelf', ['-n', requireArtifact(addonBuilds.arm64)])));
});

t.test("the README states the binaries' real glibc and libstdc++ floor", async (t) => {
  const x64 = highestVersions(await run('objdump', ['-T', prebuilds.x64]));
  const arm64 = highestVersions(await run('aarch64-linux-gnu-objdump', ['-T', prebuilds.arm64]));
  const glibc = [x64.GLIBC, arm64.GLIBC].map((v) => (v ?? '0').split('.').map(Number)).sort(compare).at(-1)?.join('.');
  const glibcxx = [x64.GLIBCXX, arm64.GLIBCXX].map((v) => (v ?? '0').split('.').map(Number)).sort(compare).at(-1)?.join('.');
  const claimedGlibc = [...readme.matchAll(/glibc ≥ (\d+\.\d+)/g)].map((m) => m[1]);
  t.ok(claimedGlibc.length > 0, 'the README names a glibc floor');
  for (const claimed of claimedGlibc) t.equal(claimed, glibc, `README's "glibc ≥ ${claimed}" is the highest GLIBC_ version the prebuilds ask for`);
  const claimedGlibcxx = [...readme.matchAll(/GLIBCXX_(\d+(?:\.\d+)+)/g)].map((m) => m[1]);
  t.ok(claimedGlibcxx.length > 0, 'the README names a libstdc++ floor');
  for (const claimed of claimedGlibcxx) t.equal(claimed, glibcxx, `README's GLIBCXX_${claimed}`);
});

t.test("the README's runtime packages are native/runtime-packages.txt", async (t) => {
  const listed = readFileSync(join(repoRoot, 'native', 'runtime-packages.txt'), 'utf8')
    .split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const block = /<!-- runtime-packages -->\n([\s\S]*?)\n<!-- \/runtime-packages -->/.exec(readme)?.[1] ?? '';
  t.same([...block.matchAll(/`([^`]+)`/g)].map((m) => m[1]), listed);
});

t.test('npm pack lists both prebuilds and the declarations, and no test or build junk', async (t) => {
  const [report] = JSON.parse(await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { env: { ...process.env, npm_config_loglevel: 'error' } })) as Array<{ files: Array<{ path: string }> }>;
  const files = (report?.files ?? []).map((f) => f.path).sort();
  t.ok(files.includes('prebuilds/linux-x64/nodenet.napi.glibc.node'), 'x64 prebuild');
  t.ok(files.includes('prebuilds/linux-arm64/nodenet.napi.glibc.node'), 'arm64 prebuild');
  t.ok(files.includes('dist/lib/kernel/index.d.ts'), 'nodenet/kernel declarations');
  t.ok(files.includes('dist/lib/kernel/index.js'), 'nodenet/kernel');
  t.ok(files.includes('dist/lib/cli/nodenet.js'), 'the nodenet command');
  // Every module ships with its declarations.
  const js = files.filter((f) => f.endsWith('.js'));
  t.same(js.filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts'))), [], 'a .d.ts beside every .js');
  // Build from source stays possible from the package alone.
  for (const f of ['binding.gyp', 'CMakeLists.txt', 'native/sources.json', 'native/toolchains/aarch64-linux-gnu.cmake']) t.ok(files.includes(f), f);
  const sources = JSON.parse(readFileSync(join(repoRoot, 'native', 'sources.json'), 'utf8')) as Record<string, unknown>;
  for (const f of (Object.values(sources).filter(Array.isArray).flat() as string[]).filter((s) => s.startsWith('native/'))) t.ok(files.includes(f), `source ${f}`);
  const junk = files.filter((f) =>
    /^(?:test|bench|build|build-[^/]*|test-results|node_modules|\.tap|\.ci|deploy|scripts)\//.test(f) ||
    /^native\/test\//.test(f) ||
    /^dist\/(?!lib\/)/.test(f) ||
    /\.(?:o|a|tsbuildinfo|map|log|tgz|tap)$/.test(f) ||
    /(?:^|\/)\.[^/]+$/.test(f) ||
    /\.test\.[jt]s$/.test(f));
  t.same(junk, [], 'nothing from tests, builds or CI');
  t.ok(files.length < 400, `a reasonable file count (${files.length})`);
});
