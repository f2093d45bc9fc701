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

/**
 * One RTM_NEWLINK (link_config.h LinkRequest): absent or undefined keys are not sent. `alias: ''`
 * removes the alias, `master: ''` releases the link from its master. lib/kernel/links.ts
 * validates everything first; the addon only checks types and ranges.
 */
export interface RawLinkRequest {
  name: string;
  kind?: 'bridge' | 'vxlan';
  bridge?: { stp?: boolean; nfCallIptables?: boolean; nfCallIp6tables?: boolean };
  vxlan?: {
    vni?: number;
    port?: number;
    portMin?: number;
    portMax?: number;
    local?: string;
    group?: string;
    underlay?: string;
    learning?: boolean;
    ttl?: number;
    tos?: number;
    udpCsum?: boolean;
  };
  mtu?: number;
  alias?: string;
  master?: string;
  up?: boolean;
  /** IFLA_ADDRESS bytes. */
  address?: Buffer;
}

/** A bridge's or VXLAN device's IFLA_INFO_DATA (link_config.h LinkDetails); '' / 0 stand for absent. */
export interface RawLinkDetails {
  index: number;
  name: string;
  /** nfCall*: null when the kernel does not report them (no CONFIG_BRIDGE_NETFILTER). */
  bridge?: { stp: boolean; nfCallIptables: boolean | null; nfCallIp6tables: boolean | null };
  vxlan?: {
    vni: number;
    port: number;
    portMin: number;
    portMax: number;
    local: string;
    group: string;
    underlayIndex: number;
    learning: boolean;
    ttl: number;
    tos: number;
    udpCsum: boolean;
  };
}

/** One AF_BRIDGE neighbour (fdb.h FdbEntry); '' / 0 / null stand for absent. */
export interface RawFdbEntry {
  mac: string;
  ifindex: number;
  device: string;
  dst: string;
  vni: number | null;
  port: number | null;
  vlan: number | null;
  viaIndex: number;
  via: string;
  masterIndex: number;
  master: string;
  /** NUD_* */
  state: number;
  /** NTF_* */
  flags: number;
}

/** One `RTM_GETROUTE` answer (routes.cc RouteLookup); empty strings and 0 stand for absent. */
export interface RawRoute {
  family: number;
  destination: string;
  oif: number;
  oifName: string;
  gateway: string;
  gatewayFamily: number;
  prefsrc: string;
  table: number;
  type: number;
  protocol: number;
  scope: number;
  flags: number;
}

/** One link notification (link_monitor.h LinkEvent); '' / 0 / -1 stand for absent. */
export type RawLinkEvent =
  | {
      type: 'new' | 'del';
      index: number;
      name: string;
      kind: string;
      flags: number;
      linkIndex: number;
      linkNetnsId: number;
      master: number;
    }
  | { type: 'overflow' };

/** An open link monitor. close() is idempotent; ref()/unref() as on a Node handle. */
export interface RawLinkWatch {
  close(): void;
  ref(): void;
  unref(): void;
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

/** One chain of tableCounterSums. */
export interface RawChainCounterSum {
  chain: string;
  packets: bigint;
  bytes: bigint;
  /** Acting rules added. */
  rules: number;
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
  /**
   * `rules` holds `count` rules back to back in the packed form lib/kernel/netfilter/apply.ts
   * writes (header, matches and target of each, length-prefixed): one Buffer per chain rather
   * than objects the addon would read property by property.
   */
  chains: Array<{ name: string; count: number; rules: Buffer }>;
  /** `rule`: exactly one rule in the same packed form. */
  jumps: Array<{ chain: string; rule: Buffer }>;
  lockTimeoutMs: number;
  dryRun: boolean;
}

export interface RawApplyResult {
  changes: string[];
  committed: boolean;
  attempts: number;
  lockWaitMs: number;
  lockHoldMs: number;
  /** Inside lockHoldMs: reading the table (iptc_init) and committing it (iptc_commit), summed over attempts. */
  readMs: number;
  commitMs: number;
}

/**
 * One nftables expression as libnftnl holds it: `name` is the expression type (payload, meta, cmp,
 * bitwise, immediate, ct, nat, counter, fib, notrack, range, lookup, ...) and every other key is one
 * of its attributes, named as libnftnl names them without the NFTNL_EXPR_<TYPE>_ prefix, lower
 * case (payload: dreg base offset len; cmp: sreg op data; immediate: dreg data verdict chain;
 * counter: bytes packets; ct: key dreg dir sreg; ...). The one exception: a compat match or
 * target's own name (NFTNL_EXPR_MT_NAME / NFTNL_EXPR_TG_NAME) would clash with `name`, so it is
 * `match` / `target` ({ name: 'match', match: 'conntrack', rev: 3, info: Buffer }).
 * Numbers are u8/u16/u32 attributes (verdict is a signed 32-bit int), bigint u64 ones, string
 * ones are strings, binary ones (cmp data, bitwise mask/xor, immediate data, range from/to: at most
 * 64 bytes; match/target info) Buffers. The addon's table of attributes (native/kernel/nftables.cc)
 * is the authority: an unknown key or a wrong type is a TypeError, an out-of-range number a
 * RangeError. An immediate loads either data or a verdict (with `chain` for jump/goto), not both.
 * A dumped expression the addon has no table for comes back with just its name.
 */
export interface RawNftExpr {
  name: string;
  [attribute: string]: string | number | bigint | Buffer;
}

/** NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10, NFPROTO_INET = 1, NFPROTO_ARP = 3, NFPROTO_BRIDGE = 7, NFPROTO_NETDEV = 5. */
export type RawNftFamily = number;

export interface RawNftTable {
  family: RawNftFamily;
  name: string;
  handle: bigint;
  flags: number;
  /** NFTA_TABLE_USERDATA, when set. */
  userdata: Buffer | null;
}

export interface RawNftChain {
  family: RawNftFamily;
  table: string;
  name: string;
  handle: bigint;
  /** Base chains only (null for regular chains): NF_INET_* hook number, priority, type, policy (NF_ACCEPT 1, NF_DROP 0). */
  hook: number | null;
  priority: number | null;
  type: string | null;
  policy: number | null;
  userdata: Buffer | null;
}

export interface RawNftRule {
  family: RawNftFamily;
  table: string;
  chain: string;
  handle: bigint;
  /** NFTA_RULE_USERDATA (TLVs; nft keeps a rule's comment there, NFTNL_UDATA_RULE_COMMENT = 0). */
  userdata: Buffer | null;
  exprs: RawNftExpr[];
}

export interface RawNftDumpRequest {
  /** Only this family (0 or absent: every family). */
  family?: RawNftFamily;
  /** Only this table (absent: every table). */
  table?: string;
  /** Also dump rules (default true). */
  rules?: boolean;
  /**
   * Sum the rules' counters in the addon instead of returning them (`rules` is then [] whatever
   * `rules` says, and `sums` holds one entry per chain that has rules). A rule acts when it holds
   * an expression named in actingExprs, or an immediate whose verdict is in actingVerdicts (NF_DROP
   * 0, NF_ACCEPT 1, ...); its first counter expression is what it adds.
   */
  counterSums?: { actingExprs: string[]; actingVerdicts: number[] };
}

export interface RawNftChainCounterSum {
  family: RawNftFamily;
  table: string;
  chain: string;
  packets: bigint;
  bytes: bigint;
  /** Acting rules whose counters were added (an acting rule without a counter adds nothing). */
  rules: number;
}

export interface RawNftDump {
  /** The ruleset generation (NFT_MSG_GETGEN) read before the dumps; pass it to nftCommit. */
  generation: number;
  /** The cookie of the namespace the dump was read in (see RawNftGeneration.netnsCookie). */
  netnsCookie: bigint;
  tables: RawNftTable[];
  chains: RawNftChain[];
  rules: RawNftRule[];
  /** Only with counterSums: the sums, in dump order. */
  sums?: RawNftChainCounterSum[];
}

export type RawNftOp =
  /** userdata (tables and rules): at most 256 bytes (NFT_USERDATA_MAXLEN). */
  | { op: 'addTable'; family: RawNftFamily; table: string; userdata?: Buffer }
  | { op: 'deleteTable'; family: RawNftFamily; table: string }
  /** NLM_F_CREATE without EXCL: an existing chain is kept; hook+priority+type (+policy) make a base chain. */
  | { op: 'addChain'; family: RawNftFamily; table: string; chain: string; hook?: number; priority?: number; type?: string; policy?: number }
  /** Deletes the chain with its rules; EBUSY while a rule elsewhere jumps to it. */
  | { op: 'deleteChain'; family: RawNftFamily; table: string; chain: string }
  /** Deletes every rule of the chain. */
  | { op: 'flushChain'; family: RawNftFamily; table: string; chain: string }
  /** Appends (or, with position, inserts after rule handle `position`). */
  | { op: 'addRule'; family: RawNftFamily; table: string; chain: string; exprs: RawNftExpr[]; userdata?: Buffer; position?: bigint }
  | { op: 'deleteRule'; family: RawNftFamily; table: string; chain: string; handle: bigint };

export interface RawNftCommitRequest {
  /**
   * When a number: sent as NFNL_BATCH_GENID, so the kernel rejects the whole batch with ERESTART
   * (code 'ERESTART') when the ruleset changed since that generation was read. (The kernel takes
   * 0 as "no check"; generations start at 1.) A failing op rejects with its object
   * (`table ip nodenet chain nat-prerouting rule 3`: the third addRule to that chain in the batch,
   * or `... rule handle 12`) and its index in the message (`addRule (op 5 of 9)`).
   */
  generation: number | null;
  ops: RawNftOp[];
  /**
   * Every addRule also carries NLM_F_ECHO: the kernel sends each created rule back as the batch
   * commits, and the result's `handles` holds their handles (default false: `handles` is empty).
   */
  echo?: boolean;
}

export interface RawNftCommitResult {
  /** With echo: the handle of each addRule op, in op order (one per addRule). Without: []. */
  handles: bigint[];
  /** The cookie of the namespace the batch went to (see RawNftGeneration.netnsCookie). */
  netnsCookie: bigint;
}

export interface RawNftGeneration {
  /** The current ruleset generation (NFT_MSG_GETGEN); each committed batch raises it by one. */
  generation: number;
  /**
   * SO_NETNS_COOKIE (Linux 5.14+): names one network namespace for the whole boot and is never
   * reused, unlike an inode number or a netns path, so a namespace deleted and re-created under the
   * same path has a new cookie. Together with `generation` it tells whether a cached view of the
   * ruleset is still the kernel's.
   */
  netnsCookie: bigint;
}

/** Reads the ruleset generation and the namespace's cookie on one netlink socket. */
export type RawNftGenerationFn = (netns?: string) => Promise<RawNftGeneration>;

export interface RawVersions {
  addon: string;
  napi: number;
  libnl: string;
  libnlBuilt: string;
  libiptc: string;
  libnftnl: string;
  libmnl: string;
  sanitizers?: string;
}

export interface NativeAddon {
  listLinks(netns?: string): Promise<RawLink[]>;
  listTables(family: 4 | 6, netns?: string): Promise<string[]>;
  /** NLM_F_CREATE | NLM_F_EXCL, then the alias in a second message (removing the link if that fails). */
  createLink(request: RawLinkRequest, netns?: string): Promise<void>;
  updateLink(request: RawLinkRequest, netns?: string): Promise<void>;
  removeLink(name: string, netns?: string): Promise<void>;
  /** Only bridges and VXLAN devices. */
  listLinkDetails(netns?: string): Promise<RawLinkDetails[]>;
  listFdb(device?: string, netns?: string): Promise<RawFdbEntry[]>;
  /** mac: 6 bytes. append: NLM_F_APPEND instead of NLM_F_REPLACE. */
  addFdb(device: string, mac: Buffer, dst: string | undefined, append: boolean, netns?: string): Promise<void>;
  removeFdb(device: string, mac: Buffer, dst: string | undefined, netns?: string): Promise<void>;
  readTable(family: 4 | 6, table: string, netns?: string): Promise<RawTable>;
  applyTable(spec: RawApplySpec, netns?: string): Promise<RawApplyResult>;
  /**
   * Per chain whose name starts with chainPrefix (also those with no acting rule), the counters of
   * its rules whose target is in actingTargets, as iptc_get_target names it ('DROP', 'DNAT', 'CT').
   * Read like readTable (no xtables lock), summed in the addon; a missing table gives [].
   */
  tableCounterSums(family: 4 | 6, table: string, chainPrefix: string, actingTargets: string[], netns?: string): Promise<RawChainCounterSum[]>;
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
  nftDump(request: RawNftDumpRequest, netns?: string): Promise<RawNftDump>;
  /** One atomic batch; resolves when the kernel accepted all of it, or rejects and nothing changed. */
  nftCommit(request: RawNftCommitRequest, netns?: string): Promise<RawNftCommitResult>;
  nftGeneration: RawNftGenerationFn;
  routeGet(destination: string, netns?: string): Promise<RawRoute>;
  /** The nsid `path` has as seen from `netns` (or the caller's namespace); -1 when none is assigned. */
  netnsId(path: string, netns?: string): Promise<number>;
  /**
   * Starts a link monitor in `netns` (or the caller's namespace); throws a native KernelError when
   * the socket cannot be opened there. The callback gets each batch of events in kernel order; a
   * non-null error means the reader stopped for good (the watch is then already closed).
   */
  watchLinks(netns: string | undefined, callback: (events: RawLinkEvent[], error: Error | null) => void): RawLinkWatch;
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
