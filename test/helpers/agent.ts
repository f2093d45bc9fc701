// Running `nodenet agent` (and its one-shot siblings `diff`, `cleanup`) as the DaemonSet runs it:
// the built CLI in a child process, forking booby-trapped, against a test network namespace as its
// node, with a kubeconfig that impersonates the deploy/ ServiceAccount so that its RBAC is what
// is tested.
//
//   const cluster = await startCluster(t);
//   await applyAgentRbac(cluster);
//   const node = await makeNetns(t);
//   const agent = await startAgent(t, { cluster, netns: node, env: { NODE_NAME: 'node-a', PROXY_MODE: 'ipvs' } });
//   await agent.ready();
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import type { TestCluster } from './cluster.js';
import { distEntry, repoRoot } from './dist.js';
import { runAllowingFailure, type RunResult } from './exec.js';
import { makeNetns, type TestNetns } from './netns.js';

export const forbidFork = join(repoRoot, 'test', 'helpers', 'forbid-fork.mjs');
export const AGENT_SERVICE_ACCOUNT = { namespace: 'kube-system', name: 'nodenet' } as const;

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** One JSON log line of the agent (pino). */
export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface AgentProcess {
  pid: number;
  /** http://127.0.0.1:PORT of /healthz, /readyz, /metrics. */
  url: string;
  /** Every log line so far. */
  logs(): LogLine[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the first log line (already written or to come) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  get(path: string): Promise<{ status: number; body: string }>;
  /** The sum of every series of a metric whose labels include `labels`; 0 when there is none. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Resolves once /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with how the process ended. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface AgentOptions {
  cluster: TestCluster;
  netns: TestNetns;
  /** NODE_NAME is required; RESYNC_PERIOD defaults to 2s here, NODENET_LOG_LEVEL to debug. */
  env: Record<string, string>;
  /** Default: a fresh lock file of this agent's own. */
  lockFile?: string;
  /** Default: a kubeconfig impersonating kube-system/nodenet. */
  kubeconfig?: string;
}

/** Applies deploy/rbac.yaml (ServiceAccount, ClusterRole, ClusterRoleBinding) as the admin. */
export async function applyAgentRbac(cluster: TestCluster): Promise<void> {
  await cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy', 'rbac.yaml')]);
}

/** A kubeconfig file that acts as the agent's ServiceAccount. */
export function agentKubeconfig(cluster: TestCluster): string {
  return cluster.kubeconfigFileAs({ serviceAccount: { ...AGENT_SERVICE_ACCOUNT } });
}

/** A loopback TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A lock file path in a directory of its own, removed in teardown. */
export function lockFileFor(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodenet-agent-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'nodenet.lock');
}

function agentEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    ...(process.env.XTABLES_LOCKFILE ? { XTABLES_LOCKFILE: process.env.XTABLES_LOCKFILE } : {}),
    NODENET_LOG_LEVEL: 'debug',
    RESYNC_PERIOD: '2s',
    // The agent suites witness with iptables-legacy-save; the nft ones say BACKEND themselves.
    BACKEND: 'iptables-legacy',
    ...extra,
  };
}

/**
 * Starts `nodenet agent --netns <node>`; it is killed in teardown if still running, and the test
 * fails there if it ever tried to fork.
 */
export async function startAgent(t: Teardown & { fail(message: string): void }, options: AgentOptions): Promise<AgentProcess> {
  const port = await freePort();
  const lockFile = options.lockFile ?? lockFileFor(t);
  const env = agentEnv({
    KUBECONFIG: options.kubeconfig ?? agentKubeconfig(options.cluster),
    NODENET_LOCK_FILE: lockFile,
    // Beside the lock: agents of parallel tests must not share the host's /run/nodenet.
    SHAPING_STATE_FILE: join(dirname(lockFile), 'shaping.json'),
    METRICS_ADDRESS: `127.0.0.1:${port}`,
    ...options.env,
  });
  const child: ChildProcess = spawn(process.execPath, ['--import', forbidFork, distEntry('lib/cli/nodenet.js'), 'agent', '--netns', options.netns.path], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const lines: LogLine[] = [];
  const waiters: Array<() => void> = [];
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const text of complete) {
      if (!text.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        // not a log line
      }
    }
    waiters.splice(0).forEach((wake) => wake());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      resolve({ code, signal });
      waiters.splice(0).forEach((wake) => wake());
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  t.teardown(async () => {
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
    if (stderr.includes('FORBIDDEN FORK')) t.fail(`the agent tried to fork:\n${stderr}`);
  });

  const url = `http://127.0.0.1:${port}`;
  const get = async (path: string) => {
    const response = await fetch(url + path);
    return { status: response.status, body: await response.text() };
  };
  const agent: AgentProcess = {
    pid: child.pid!,
    url,
    logs: () => [...lines],
    stderr: () => stderr,
    async waitForLog(match, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(match);
        if (found) return found;
        if (done) throw new Error(`the agent exited without the expected log line; stderr:\n${stderr.slice(-3000)}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${stderr.slice(-3000)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    get,
    async metric(name, labels = {}) {
      const { body } = await get('/metrics');
      return metricValue(body, name, labels);
    },
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        if (done) throw new Error(`the agent exited before it was ready; stderr:\n${stderr.slice(-3000)}`);
        try {
          const r = await get('/readyz');
          if (r.status === 200) return;
          last = `${r.status} ${r.body}`;
        } catch (e) {
          last = (e as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`/readyz not 200 within ${timeoutMs} ms (last: ${last}); stderr:\n${stderr.slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (!done) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the agent did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    exited,
  };
  return agent;
}

/** Sums the samples of `name` whose labels include `labels`, from Prometheus text format. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

/** Runs a one-shot nodenet command (diff, cleanup, ...) as the agent would, forking forbidden. */
export async function runNodenet(args: string[], env: Record<string, string>): Promise<RunResult> {
  const result = await runAllowingFailure(process.execPath, ['--import', forbidFork, distEntry('lib/cli/nodenet.js'), ...args], { env: agentEnv(env) });
  if (result.stderr.includes('FORBIDDEN FORK')) throw new Error(`nodenet ${args.join(' ')} tried to fork: ${result.stderr}`);
  return result;
}

export interface SandboxNode {
  /** The network namespace that plays the node. */
  netns: TestNetns;
  /** The Node object's name (NODE_NAME). */
  name: string;
}

/**
 * A "node": a fresh network namespace and a Node object (default pod CIDR 10.244.1.0/24) with a
 * name derived from the test's namespace; both removed in teardown.
 */
export async function sandboxNode(
  t: Teardown,
  k: { namespace: string; createNode(o: { name: string; podCIDRs?: string[]; internalIPs?: string[] }): Promise<unknown> },
  podCIDRs: string[] = ['10.244.1.0/24'],
): Promise<SandboxNode> {
  const netns = await makeNetns(t);
  const name = `node-${k.namespace}`;
  await k.createNode({ name, podCIDRs, internalIPs: ['192.0.2.11'] });
  return { netns, name };
}

/**
 * Gives the node a default route (through a veth pair of its own, 192.0.2.11/24 via 192.0.2.1), so
 * that it can send to external addresses and its packets meet nodenet's OUTPUT rules. The route
 * leads nowhere: nothing leaves the namespace.
 */
export async function addUplink(netns: TestNetns): Promise<void> {
  await netns.exec('ip', ['link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1']);
  await netns.exec('ip', ['addr', 'add', '192.0.2.11/24', 'dev', 'uplink0']);
  await netns.exec('ip', ['link', 'set', 'uplink0', 'up']);
  await netns.exec('ip', ['link', 'set', 'uplink1', 'up']);
  await netns.exec('ip', ['route', 'add', 'default', 'via', '192.0.2.1']);
}

/** Sends one UDP datagram of `size` bytes from inside the namespace. */
export async function sendUdp(netns: TestNetns, address: string, port: number, size = 1): Promise<void> {
  const script = `const d = require('node:dgram').createSocket('udp4'); d.send(Buffer.alloc(${size}), ${port}, ${JSON.stringify(address)}, () => d.close());`;
  await netns.exec(process.execPath, ['-e', script]);
}
