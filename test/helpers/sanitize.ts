// The environment under which node can load the sanitizer build of the addon.
import { run } from './exec.js';

/** LD_PRELOAD of gcc's libasan (it must come first) and options that make every finding fatal. */
export async function sanitizerEnv(addon: string): Promise<NodeJS.ProcessEnv> {
  const libasan = (await run('gcc', ['-print-file-name=libasan.so'])).trim();
  return {
    ...process.env,
    NODENET_ADDON: addon,
    LD_PRELOAD: libasan,
    // Node itself keeps allocations until exit; leaks are checked in the C++ unit tests instead.
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  };
}
