// One throw-away control plane (etcd + kube-apiserver from test/cluster/up) per test file.
//
// tap runs files in parallel processes, so a cluster per file keeps files independent; tests
// inside a file share it and keep apart by namespace (see kube.ts). The cluster is stopped in the
// file's teardown, pass or fail. A file that is killed (tap's timeout, Ctrl-C) never runs its
// teardown, and the daemons run in their own session, so a detached watchdog stops the cluster
// once this process is gone.
//
//   import t from 'tap';
//   const cluster = await startCluster(t);
//   const core = cluster.kc.makeApiClient(CoreV1Api);
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { KubeConfig } from '@kubernetes/client-node';

import { repoRoot } from './dist.js';
import { run, runAllowingFailure, type RunResult } from './exec.js';

/** Who a request is made as: a ServiceAccount, or any user name with optional groups. */
export type Identity = { serviceAccount: { namespace: string; name: string } } | { user: string; groups?: string[] };

export interface TestCluster {
  /** Admin kubeconfig (client certificate in group system:masters). */
  kubeconfigPath: string;
  /** The admin as a client-node KubeConfig. */
  kc: KubeConfig;
  /** https://127.0.0.1:PORT */
  apiserver: string;
  /** http://127.0.0.1:PORT, etcd's client URL (and its v3 JSON gateway). */
  etcdEndpoint: string;
  /** Holds kubeconfig, logs, pki/; removed on teardown. */
  stateDir: string;
  /** Where kube-apiserver, etcd, kubectl and helm are. */
  binDir: string;
  kubectlPath: string;
  /** Service cluster IP ranges, IPv4 first. */
  serviceCIDRs: string[];
  /** kubectl as the admin; rejects with kubectl's stderr when it exits non-zero. */
  kubectl(args: string[], input?: string): Promise<string>;
  kubectlAllowingFailure(args: string[], input?: string): Promise<RunResult>;
  /** A KubeConfig that impersonates `who` (the admin may impersonate anyone). */
  kubeConfigAs(who: Identity): KubeConfig;
  /** The same as a kubeconfig file (`as`, `as-groups`), for kubectl and for processes under test. */
  kubeconfigFileAs(who: Identity): string;
  /** etcd's current revision, which is the newest resourceVersion anywhere in the cluster. */
  etcdRevision(): Promise<number>;
  /**
   * Compacts etcd to its current revision and returns that revision. Anything served from etcd
   * for an older resourceVersion is then gone (410). Note the apiserver serves most watches from
   * its watch cache, which compaction does not touch; see test/e2e/20.watch-compaction.test.ts.
   */
  compactEtcd(): Promise<number>;
  /** The last lines of the apiserver and etcd logs. */
  logTail(lines?: number): string;
}

/** The part of a tap test this helper uses. */
export interface ClusterTest {
  teardown(fn: () => unknown): void;
  passing(): boolean;
  comment(...message: unknown[]): void;
  fail(message: string, extra: Record<string, unknown>): boolean;
}

const clusterDir = join(repoRoot, 'test', 'cluster');

/** The user name the apiserver gives an identity. */
export function userName(who: Identity): string {
  return 'serviceAccount' in who ? `system:serviceaccount:${who.serviceAccount.namespace}:${who.serviceAccount.name}` : who.user;
}

/**
 * Starts a control plane (about 3 s when the binaries are built) and stops it in `t`'s teardown;
 * if anything in `t` failed, the teardown first prints the daemons' last log lines as TAP
 * comments. Call it first thing with the file's root `t`: if the control plane does not start,
 * `t` gets a failure carrying up's output (which ends with those log lines) and the file exits.
 */
export async function startCluster(t: ClusterTest): Promise<TestCluster> {
  const started = Date.now();
  const stateDir = mkdtempSync(join(tmpdir(), 'nodenet-cluster.'));
  const watchdog = startWatchdog(stateDir);
  const up = await runAllowingFailure(join(clusterDir, 'up'), [], {
    env: { ...process.env, NODENET_CLUSTER_STATE_DIR: stateDir },
  });
  if (up.code !== 0) {
    // up has already stopped whatever it started and removed the state dir.
    stopWatchdog(watchdog);
    rmdirQuietly(stateDir);
    // A throw from a file's top level reaches only stderr, and whatever follows would run without
    // a cluster: record the failure (up's output ends with the daemons' last log lines) and end
    // the file here. tap closes its output on exit.
    t.fail(`control plane did not start: test/cluster/up exited ${up.code}`, { diagnostic: true, stateDir, output: up.stderr });
    process.exit(1);
  }

  t.teardown(async () => {
    if (!t.passing()) t.comment(`control plane ${stateDir}, logs at the time of failure:\n${logTail(stateDir, 40)}`);
    try {
      await run(join(clusterDir, 'down'), [stateDir]);
    } finally {
      stopWatchdog(watchdog);
    }
  });

  const env = parseEnv(readFileSync(join(stateDir, 'env'), 'utf8'));
  const kubeconfigPath = required(env, 'KUBECONFIG');
  const binDir = required(env, 'BIN_DIR');
  const kubectlPath = join(binDir, 'kubectl');
  const etcdEndpoint = required(env, 'ETCD_ENDPOINT');
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  t.comment(`control plane ${env.get('APISERVER')} up in ${((Date.now() - started) / 1000).toFixed(1)} s, state in ${stateDir}`);

  const kubectlArgs = (args: string[]) => [`--kubeconfig=${kubeconfigPath}`, ...args];
  let identityFiles = 0;

  const cluster: TestCluster = {
    kubeconfigPath,
    kc,
    apiserver: required(env, 'APISERVER'),
    etcdEndpoint,
    stateDir,
    binDir,
    kubectlPath,
    serviceCIDRs: required(env, 'SERVICE_CIDR').split(','),
    kubectl: (args, input) => run(kubectlPath, kubectlArgs(args), input === undefined ? {} : { input }),
    kubectlAllowingFailure: (args, input) => runAllowingFailure(kubectlPath, kubectlArgs(args), input === undefined ? {} : { input }),
    kubeConfigAs(who) {
      const impersonating = new KubeConfig();
      impersonating.loadFromFile(cluster.kubeconfigFileAs(who));
      const groups = 'user' in who ? (who.groups ?? []) : [];
      if (groups.length > 0) impersonating.addAuthenticator(groupImpersonation(impersonating, groups));
      return impersonating;
    },
    kubeconfigFileAs(who) {
      const config = JSON.parse(kc.exportConfig()) as { users: Array<{ user: Record<string, unknown> }> };
      for (const entry of config.users) {
        entry.user.as = userName(who);
        // A ServiceAccount's groups are added by the apiserver, exactly as for its real tokens.
        if ('user' in who && who.groups?.length) entry.user['as-groups'] = who.groups;
      }
      const path = join(stateDir, `kubeconfig-as-${++identityFiles}.json`);
      writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
      return path;
    },
    etcdRevision: () => etcdRevision(etcdEndpoint),
    async compactEtcd() {
      const revision = await etcdRevision(etcdEndpoint);
      // physical: return only once the compaction has been applied to the backend.
      await etcdPost(etcdEndpoint, '/v3/kv/compaction', { revision: String(revision), physical: true });
      return revision;
    },
    logTail: (lines = 40) => logTail(stateDir, lines),
  };
  return cluster;
}

// client-node reads only `as` from a kubeconfig, not `as-groups`, so groups are sent by an
// authenticator. It must survive two header paths: the API clients stringify each header value
// (an array would become one group "a,b"), while Watch appends array elements but `set`s plain
// strings (the last one would win). One single-element array per group under distinct spellings
// of the (case-insensitive) header name satisfies both; node-fetch merges them into one header
// with a value per group.
function groupImpersonation(kc: KubeConfig, groups: string[]) {
  const configUser = kc.getCurrentUser()?.name;
  return {
    isAuthProvider: (user: { name: string }) => user.name === configUser,
    async applyAuthentication(_user: unknown, opts: { headers?: Record<string, unknown> }) {
      opts.headers ??= {};
      groups.forEach((group, i) => {
        opts.headers![spelling('impersonate-group', i)] = [group];
      });
    },
  };
}

/** The i-th distinct capitalisation of `name`. */
function spelling(name: string, i: number): string {
  let bit = 0;
  return [...name].map((c) => (/[a-z]/.test(c) && (i >> bit++) & 1 ? c.toUpperCase() : c)).join('');
}

// Detached and in its own session: it must outlive this process (which may be killed without
// running any teardown) and a Ctrl-C to the terminal's process group. exec.ts only runs tools to
// completion, so this is spawned here. `down` refuses a dir that up never marked, and is a no-op
// for one already stopped.
function startWatchdog(stateDir: string): number | undefined {
  const script = 'tail --pid="$1" -s 0.5 -f /dev/null; "$2" "$3" >/dev/null 2>&1; rmdir "$3" 2>/dev/null; exit 0';
  const child = spawn('bash', ['-c', script, 'nodenet-cluster-watchdog', String(process.pid), join(clusterDir, 'down'), stateDir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  return child.pid;
}

function stopWatchdog(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

function rmdirQuietly(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // up removed it, or kept it on purpose (NODENET_CLUSTER_KEEP_FAILED)
  }
}

function parseEnv(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env.set(m[1]!, m[2]!);
  }
  return env;
}

function required(env: Map<string, string>, key: string): string {
  const value = env.get(key);
  if (!value) throw new Error(`test/cluster/up wrote no ${key} to its env file`);
  return value;
}

function logTail(stateDir: string, lines: number): string {
  return ['kube-apiserver', 'etcd']
    .map((name) => {
      const file = join(stateDir, `${name}.log`);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        return `----- ${file}: ${(e as Error).message}`;
      }
      return `----- last ${lines} lines of ${file} -----\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
    })
    .join('\n');
}

async function etcdPost(endpoint: string, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(endpoint + path, { method: 'POST', body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function etcdRevision(endpoint: string): Promise<number> {
  // Any range request answers with the store's current revision in its header.
  const reply = (await etcdPost(endpoint, '/v3/kv/range', { key: Buffer.from('nodenet-revision-probe').toString('base64') })) as {
    header?: { revision?: string };
  };
  const revision = Number(reply.header?.revision);
  if (!Number.isSafeInteger(revision) || revision <= 0) throw new Error(`etcd gave no revision: ${JSON.stringify(reply)}`);
  return revision;
}
