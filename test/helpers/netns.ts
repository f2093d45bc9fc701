// The one helper every kernel test uses to get a network namespace of its own.
//
// Each namespace is named nnt-<pid>-<n>, created with `ip netns add` and removed in the test's
// teardown, whether it passed or not. A run that was killed leaves names whose pid is gone; the
// next run removes those first. Nothing here touches the machine's own namespace.
import { existsSync, readdirSync } from 'node:fs';

import { run, runAllowingFailure } from './exec.js';

export interface TestNetns {
  /** The name `ip netns` knows it by. */
  name: string;
  /** The path nodenet's API takes. */
  path: string;
  /** Runs a command inside the namespace (`ip netns exec`). */
  exec(cmd: string, args: string[], input?: string): Promise<string>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

const PREFIX = 'nnt-';
let counter = 0;
let swept = false;

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('kernel tests need root (CAP_SYS_ADMIN for network namespaces, CAP_NET_ADMIN for netfilter); run them as root');
  }
}

async function sweepStale(): Promise<void> {
  if (swept) return;
  swept = true;
  if (!existsSync('/var/run/netns')) return;
  for (const name of readdirSync('/var/run/netns')) {
    const m = /^nnt-(\d+)-\d+$/.exec(name);
    if (m && !existsSync(`/proc/${m[1]}`)) await runAllowingFailure('ip', ['netns', 'del', name]);
  }
}

/** A fresh network namespace with lo up, removed when the test ends. */
export async function makeNetns(t: Teardown): Promise<TestNetns> {
  requireRoot();
  await sweepStale();
  const name = `${PREFIX}${process.pid}-${++counter}`;
  await run('ip', ['netns', 'add', name]);
  t.teardown(async () => {
    await runAllowingFailure('ip', ['netns', 'del', name]);
  });
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    path: `/var/run/netns/${name}`,
    exec: (cmd, args, input) => run('ip', ['netns', 'exec', name, cmd, ...args], input === undefined ? {} : { input }),
  };
}

/** The names of this process's test namespaces that still exist (for leak checks). */
export function liveTestNamespaces(): string[] {
  if (!existsSync('/var/run/netns')) return [];
  return readdirSync('/var/run/netns').filter((n) => n.startsWith(`${PREFIX}${process.pid}-`));
}

export interface LinkedPair {
  a: TestNetns;
  b: TestNetns;
}

/**
 * Two fresh namespaces joined by a veth pair, both ends up: `va` in a with 10.77.0.1/24 and `vb` in
 * b with 10.77.0.2/24 (addresses only ever exist inside the test namespaces).
 */
export async function linkedPair(t: Teardown): Promise<LinkedPair> {
  const a = await makeNetns(t);
  const b = await makeNetns(t);
  await a.exec('ip', ['link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', b.name]);
  await a.exec('ip', ['addr', 'add', '10.77.0.1/24', 'dev', 'va']);
  await b.exec('ip', ['addr', 'add', '10.77.0.2/24', 'dev', 'vb']);
  await a.exec('ip', ['link', 'set', 'va', 'up']);
  await b.exec('ip', ['link', 'set', 'vb', 'up']);
  return { a, b };
}
