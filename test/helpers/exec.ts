// Running witness tools. Tests may fork; the product never does.
import { spawn } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command; rejects with its stderr when it exits non-zero. */
export async function run(cmd: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const result = await runAllowingFailure(cmd, args, options);
  if (result.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}

/** Runs a command and reports how it ended instead of throwing. */
export function runAllowingFailure(
  cmd: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: toolEnvironment(cmd, options.env ?? process.env),
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(options.uid !== undefined ? { uid: options.uid } : {}),
      ...(options.gid !== undefined ? { gid: options.gid } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    if (!child.stdout || !child.stderr) throw new Error('spawn gave no output pipes');
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) }));
    if (child.stdin) {
      child.stdin.on('error', () => {}); // a tool that exits before reading its input is judged by its exit code
      child.stdin.end(options.input);
    }
  });
}

// The sanitizer stage preloads libasan into node; witness tools must not inherit it. A tool that
// is itself a node script then gets the regular addon, which needs no preload.
function toolEnvironment(cmd: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (cmd === process.execPath || env.LD_PRELOAD === undefined) return env;
  const { LD_PRELOAD: _preload, NODENET_ADDON: _addon, NODENET_EXPECT_SANITIZERS: _expect, ...rest } = env;
  return rest;
}

