// The per-file control plane helper keeps its promises when a test file goes wrong: a failing file
// shows the daemons' logs, a control plane that cannot start fails the file with the reason, and
// nothing is left running afterwards, not even when the file is killed outright.
//
// Each case is a small test file of its own, run the way tap runs one (same node, same loaders).
import t from 'tap';

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const scratch = mkdtempSync(join(tmpdir(), 'nodenet-e2e-lifecycle-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
let files = 0;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The state dir the file's cluster used, as its TAP output or failure reported it. */
  stateDir: string | undefined;
}

/** Runs `body` as a test file that has `t` and `startCluster`; `kill` SIGKILLs it once its cluster is up. */
function runFile(body: string, options: { env?: Record<string, string>; kill?: boolean } = {}): Promise<Outcome> {
  const file = join(scratch, `case-${++files}.test.mts`);
  const helper = pathToFileURL(join(import.meta.dirname, '..', 'helpers', 'cluster.js')).href;
  writeFileSync(file, `import t from '${import.meta.resolve('tap')}';\nimport { startCluster } from '${helper}';\n${body}\n`);
  // Without these the file would report to a tap runner that is not its parent.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^TAP_(CHILD_ID|CHILD_KEY|JOB_ID)$/.test(k)));
  const child = spawn(process.execPath, [...process.execArgv, file], {
    env: { ...env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    if (options.kill && stateDirIn(stdout)) child.kill('SIGKILL');
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, stateDir: stateDirIn(stdout) }));
  });
}

function stateDirIn(tap: string): string | undefined {
  return /state in (\S+)/.exec(tap)?.[1] ?? /stateDir: (\S+)/.exec(tap)?.[1];
}

/** Live processes whose command line mentions `dir` (etcd and the apiserver name their state dir). */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmdline.includes(`${dir}/`)) found.push(`${pid} ${cmdline.slice(0, 120)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

async function gone(dir: string, timeoutMs: number): Promise<{ processes: string[]; dirExists: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = { processes: processesUsing(dir), dirExists: existsSync(dir) };
    if ((!state.processes.length && !state.dirExists) || Date.now() > deadline) return state;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// Started together: each needs a control plane of its own for a few seconds.
const failing = runFile(`
const cluster = await startCluster(t);
t.test('fails on purpose', async (t) => {
  await cluster.kubectl(['get', 'namespaces']);
  t.equal(1, 2, 'deliberate failure');
});`);
const passing = runFile(`
const cluster = await startCluster(t);
t.test('passes', async (t) => {
  t.match(await cluster.kubectl(['get', 'namespaces']), /default/);
});`);
const unstartable = runFile(
  `
await startCluster(t);
t.test('never runs', async (t) => t.fail('a test ran without a control plane'));`,
  { env: { NODENET_CLUSTER_SERVICE_CIDR: 'not-a-cidr' } },
);
const killed = runFile(
  `
await startCluster(t);
setInterval(() => {}, 1000);`,
  { kill: true },
);

t.test('a failing file prints the logs and still stops its control plane', async (t) => {
  const run = await failing;
  t.not(run.code, 0, 'the file fails');
  t.match(run.stdout, /^not ok \d+ - fails on purpose/m);
  const dir = run.stateDir;
  if (!t.ok(dir, 'the file reported its state dir')) return t.comment(run.stdout, run.stderr);
  t.match(run.stdout, `# control plane ${dir}, logs at the time of failure:`);
  t.match(run.stdout, `# ----- last 40 lines of ${dir}/kube-apiserver.log -----`);
  t.match(run.stdout, `# ----- last 40 lines of ${dir}/etcd.log -----`);
  t.same(await gone(dir!, 0), { processes: [], dirExists: false }, 'etcd and the apiserver are gone, and the state dir with them');
});

t.test('a passing file stops its control plane without printing logs', async (t) => {
  const run = await passing;
  t.equal(run.code, 0, 'the file passes');
  t.notMatch(run.stdout, 'logs at the time of failure');
  const dir = run.stateDir;
  if (!t.ok(dir, 'the file reported its state dir')) return t.comment(run.stdout, run.stderr);
  t.same(await gone(dir!, 0), { processes: [], dirExists: false });
});

t.test('a control plane that cannot start fails the file and says why', async (t) => {
  const run = await unstartable;
  t.not(run.code, 0, 'the file fails');
  t.match(run.stdout, /^not ok 1 - control plane did not start: test\/cluster\/up exited 1$/m, 'as a failed assertion');
  t.match(run.stdout, 'service-cluster-ip-range[0] is not a valid cidr', "the apiserver's own words are in the output");
  t.notMatch(run.stdout, 'a test ran without a control plane');
  const dir = run.stateDir;
  if (!t.ok(dir, 'the failure names the state dir')) return t.comment(run.stdout, run.stderr);
  t.same(await gone(dir!, 0), { processes: [], dirExists: false });
});

t.test('a killed file never runs its teardown, and the watchdog stops its control plane', async (t) => {
  const run = await killed;
  t.equal(run.signal, 'SIGKILL');
  const dir = run.stateDir;
  if (!t.ok(dir, 'the file reported its state dir before it was killed')) return t.comment(run.stdout, run.stderr);
  t.same(await gone(dir!, 20_000), { processes: [], dirExists: false }, 'gone within seconds');
});
