// node-gyp (binding.gyp) and cmake-js (CMakeLists.txt) build the same sources, from
// native/sources.json, into addons that load with every symbol resolved and link the kernel
// libraries.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { addonBuilds, requireArtifact } from '../helpers/artifacts.js';
import { repoRoot } from '../helpers/dist.js';
import { run, runAllowingFailure } from '../helpers/exec.js';

const sources = JSON.parse(readFileSync(join(repoRoot, 'native', 'sources.json'), 'utf8')) as { kernel: string[]; addon: string[] };
const KERNEL_LIBRARIES = ['libip4tc.so.2', 'libip6tc.so.2', 'libnl-route-3.so.200', 'libnl-3.so.200', 'libnftnl.so.11', 'libmnl.so.0'];

for (const [name, path] of [['node-gyp', addonBuilds.gyp], ['cmake-js', addonBuilds.cmake]] as const) {
  t.test(`${name} build`, async (t) => {
    requireArtifact(path);
    const ldd = await run('ldd', [path]);
    for (const lib of KERNEL_LIBRARIES) t.match(ldd, new RegExp(`${lib.replace(/\./g, '\\.')} => /`), `links ${lib}`);
    t.notMatch(ldd, /not found/);
    // RTLD_NOW: an unresolved symbol (a C++-mangled C function, say) fails at load, not at first call.
    const script = `
      const os = require('node:os');
      const m = { exports: {} };
      process.dlopen(m, ${JSON.stringify(path)}, os.constants.dlopen.RTLD_NOW);
      m.exports.listLinks().then((l) => console.log(JSON.stringify({ version: m.exports.versions().addon, links: l.length })));`;
    const result = await runAllowingFailure(process.execPath, ['-e', script]);
    t.equal(result.code, 0, result.stderr);
    t.match(JSON.parse(result.stdout), { version: /^\d+\.\d+\.\d+/, links: Number });
    const symbols = await run('nm', ['-D', '--undefined-only', path]);
    t.notMatch(symbols, /_Z\w*(ip6?tc|rtnl|nl)_/, 'no C library function referenced with C++ linkage');
  });
}

t.test('both builds compiled every listed source and nothing else', async (t) => {
  const all = [...sources.kernel, ...sources.addon];
  const gypObjects = (await run('find', [join(repoRoot, 'build', 'Release', 'obj.target', 'nodenet'), '-name', '*.o'])).trim().split('\n');
  const cmakeObjects = (await run('find', [join(repoRoot, 'build-cmake', 'CMakeFiles'), '-name', '*.o'])).trim().split('\n');
  const stem = (p: string) => p.replace(/.*\/native\//, 'native/').replace(/\.(cc\.)?o$/, '');
  t.same(gypObjects.map(stem).sort(), all.map((s) => s.replace(/\.cc$/, '')).sort(), 'node-gyp objects');
  t.same(cmakeObjects.map(stem).sort(), all.map((s) => s.replace(/\.cc$/, '')).sort(), 'cmake-js objects');
});

t.test('node-gyp-build resolves the package build', async (t) => {
  const script = `const b = require('node-gyp-build'); console.log(b.resolve(${JSON.stringify(repoRoot)}))`;
  const result = await runAllowingFailure(process.execPath, ['-e', script], { cwd: repoRoot });
  t.equal(result.stdout.trim(), addonBuilds.gyp);
});

t.test('the package exports its kernel API as nodenet/kernel', async (t) => {
  const script = `const k = await import('nodenet/kernel'); console.log(JSON.stringify(Object.keys(k).sort()));`;
  const result = await runAllowingFailure(process.execPath, ['--input-type=module', '-e', script], { cwd: repoRoot });
  t.equal(result.code, 0, result.stderr);
  t.same(JSON.parse(result.stdout), ['KernelError', 'conntrack', 'fdb', 'isKernelError', 'linkMonitor', 'links', 'netfilter', 'qdiscs', 'routes', 'runtime', 'sysctl']);
  const types = await runAllowingFailure('test', ['-f', join(repoRoot, 'dist', 'lib', 'kernel', 'index.d.ts')]);
  t.equal(types.code, 0, 'type declarations are built next to it');
});
