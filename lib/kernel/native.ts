// Loads the native addon once, on first use, and describes its raw (undecoded) interface.
// Everything here is internal to lib/kernel: the public API wraps it with types and errors.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RawLink {
  index: number;
  name: string;
  kind: string;
  slaveKind: string;
  mtu: number;
  flags: number;
  operstate: number;
  txqlen: number;
  masterIndex: number;
  linkIndex: number;
  linkNetnsId: number;
  alias: string;
  address: string;
}

export interface RawExtension {
  name: string;
  revision: number;
  data: Buffer;
}

export interface RawRule {
  ip: Buffer;
  packets: bigint;
  bytes: bigint;
  matches: RawExtension[];
  target: RawExtension;
  verdict: string;
}

export interface RawChain {
  name: string;
  builtin: boolean;
  policy: string;
  packets: bigint;
  bytes: bigint;
  references: number;
  rules: RawRule[];
}

export interface RawTable {
  family: 4 | 6;
  name: string;
  chains: RawChain[];
}

export interface RawQdisc {
  ifindex: number;
  device: string;
  handle: number;
  parent: number;
  kind: string;
  options: Buffer;
  xstats: Buffer;
  stats: {
    bytes: bigint;
    packets: bigint;
    qlen: number;
    backlog: number;
    drops: number;
    requeues: number;
    overlimits: number;
  } | null;
}

export interface RawQdiscRequest {
  op: 'add' | 'replace' | 'change' | 'delete';
  device: string;
  parent: number;
  handle: number;
  kind: string;
  options: Buffer | undefined;
}

export interface RawApplySpec {
  family: 4 | 6;
  table: string;
  ownedPrefix: string;
  chains: Array<{ name: string; rules: RawRuleSpec[] }>;
  jumps: Array<{ chain: string; rule: RawRuleSpec }>;
  lockTimeoutMs: number;
  dryRun: boolean;
}

export interface RawRuleSpec {
  ip: Buffer;
  matches: Array<{ name: string; revision: number; data: Buffer }>;
  target: { standard: boolean; name: string; revision: number; data: Buffer };
}

export interface RawApplyResult {
  changes: string[];
  committed: boolean;
  attempts: number;
  lockWaitMs: number;
  lockHoldMs: number;
}

export interface RawVersions {
  addon: string;
  napi: number;
  libnl: string;
  libnlBuilt: string;
  libiptc: string;
  sanitizers?: string;
}

export interface NativeAddon {
  listLinks(netns?: string): Promise<RawLink[]>;
  listTables(family: 4 | 6, netns?: string): Promise<string[]>;
  readTable(family: 4 | 6, table: string, netns?: string): Promise<RawTable>;
  applyTable(spec: RawApplySpec, netns?: string): Promise<RawApplyResult>;
  listQdiscs(device?: string, netns?: string): Promise<RawQdisc[]>;
  changeQdisc(request: RawQdiscRequest, netns?: string): Promise<void>;
  readSysctl(name: string, netns?: string): Promise<string>;
  writeSysctl(name: string, value: string, netns?: string): Promise<void>;
  acquireLock(path: string): Promise<number>;
  releaseLock(id: number): boolean;
  deleteConntrack(filter: { family: 4 | 6; protocol: number; destination: Buffer; port: number }, netns?: string): Promise<number>;
  versions(): RawVersions;
  workerThreads(): number;
  threadNetns(index: number): Promise<number>;
  // Only in the sanitizer build (NODENET_SANITIZE): deliberate faults.
  probeHeapOverflow?(): void;
  probeSignedOverflow?(): number;
}

let loaded: { addon: NativeAddon; path: string } | undefined;

/** The directory holding nodenet's package.json, found from this file (lib/ or dist/lib/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && (JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'nodenet') {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('nodenet: cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

function checkEnvironment(): void {
  const threads = process.env.NODENET_KERNEL_THREADS;
  if (threads !== undefined && threads !== '' && !/^(?:[1-9]|1[0-6])$/.test(threads)) {
    throw new Error(`NODENET_KERNEL_THREADS must be a whole number from 1 to 16, not ${JSON.stringify(threads)}`);
  }
}

function load(): { addon: NativeAddon; path: string } {
  checkEnvironment();
  const require = createRequire(import.meta.url);
  // NODENET_ADDON selects another build of the same addon (the sanitizer build, a cmake-js build).
  const override = process.env.NODENET_ADDON;
  if (override) return { addon: require(override) as NativeAddon, path: override };
  const nodeGypBuild = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
  const root = packageRoot();
  const path = nodeGypBuild.resolve(root);
  return { addon: require(path) as NativeAddon, path };
}

/** The native addon, loaded on first call. */
export function native(): NativeAddon {
  loaded ??= load();
  return loaded.addon;
}

/** The file the addon was loaded from. */
export function nativePath(): string {
  loaded ??= load();
  return loaded.path;
}
