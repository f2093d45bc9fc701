// The sanitizer build really checks: a deliberate overflow compiled only into that build kills the
// process with the sanitizer's report. A sanitizer run that survives this would prove nothing.
import t from 'tap';

import { addonBuilds, requireArtifact } from '../helpers/artifacts.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { sanitizerEnv } from '../helpers/sanitize.js';

const addon = requireArtifact(addonBuilds.asan);

async function probe(name: string) {
  const env = await sanitizerEnv(addon);
  return runAllowingFailure(process.execPath, ['-e', `require(${JSON.stringify(addon)}).${name}()`], { env });
}

t.test('AddressSanitizer catches a heap overflow', async (t) => {
  const result = await probe('probeHeapOverflow');
  t.not(result.code, 0, 'the process dies');
  t.match(result.stderr, /AddressSanitizer: heap-buffer-overflow/);
  t.match(result.stderr, /sanitizer_probes\.cc/);
});

t.test('UndefinedBehaviorSanitizer catches signed overflow', async (t) => {
  const result = await probe('probeSignedOverflow');
  t.not(result.code, 0, 'the process dies');
  t.match(result.stderr, /runtime error: signed integer overflow/);
});

t.test('the regular builds carry no probes', async (t) => {
  for (const path of [addonBuilds.gyp, addonBuilds.cmake]) {
    const result = await runAllowingFailure(process.execPath, ['-e', `console.log(typeof require(${JSON.stringify(requireArtifact(path))}).probeHeapOverflow)`]);
    t.equal(result.stdout.trim(), 'undefined', path);
  }
});

t.test('the kernel stage under sanitizers loads the sanitizer build', async (t) => {
  const env = await sanitizerEnv(addon);
  const result = await runAllowingFailure(process.execPath, ['-e', `console.log(require(${JSON.stringify(addon)}).versions().sanitizers)`], { env });
  t.equal(result.stdout.trim(), 'address,undefined');
});
