// The C++ unit tests (GoogleTest, registered with ctest by CMakeLists.txt), built with ASan/UBSan
// and run under LeakSanitizer; and proof that LeakSanitizer is live.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { nativeTestsDir, requireArtifact } from '../helpers/artifacts.js';
import { runAllowingFailure } from '../helpers/exec.js';

const LSAN_ENV = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:halt_on_error=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' };

t.test('ctest: every C++ unit test passes with no leak', async (t) => {
  requireArtifact(join(nativeTestsDir, 'native_tests'));
  const junit = join(nativeTestsDir, 'ctest-results.xml');
  const result = await runAllowingFailure('ctest', ['--test-dir', nativeTestsDir, '--output-on-failure', '--output-junit', junit], { env: LSAN_ENV });
  t.equal(result.code, 0, result.stdout + result.stderr);
  const xml = readFileSync(junit, 'utf8');
  const cases = [...xml.matchAll(/<testcase name="([^"]+)"[^>]*status="([^"]+)"/g)];
  t.ok(cases.length >= 10, `${cases.length} C++ tests ran`);
  for (const [, name, status] of cases) t.equal(status, 'run', `${name}`);
  t.notMatch(result.stdout, /LeakSanitizer/);
});

t.test('LeakSanitizer is live: a deliberate leak fails', async (t) => {
  const probe = requireArtifact(join(nativeTestsDir, 'native_leak_probe'));
  const result = await runAllowingFailure(probe, [], { env: LSAN_ENV });
  t.not(result.code, 0);
  t.match(result.stderr, /LeakSanitizer: detected memory leaks/);
});
