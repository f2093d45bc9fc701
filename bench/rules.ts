// Rule programming, one scenario family of `npm run bench`: the External-IP fix for N LoadBalancer
// Services (4 rules each, in NODENET-EXTERNAL-HOST and NODENET-EXTERNAL-PODS, plus a jump into each
// from OUTPUT and PREROUTING), written into a node whose nat is empty and into one already holding
// 20,000 foreign rules (what kube-proxy leaves on a big node), by:
//
// - nodenet through libiptc (legacy) and through nf_tables: cold apply, a resync with nothing to
//   change (must commit nothing), a one-Service change (one load-balancer IP moves);
// - `iptables-legacy-restore -w --noflush` with the whole state, as kube-proxy does: cold apply and
//   the change (the owned chains declared `:CHAIN - [0:0]`, which under --noflush flushes them, and
//   refilled);
// - one `iptables-legacy -w -t nat ...` process per rule, as the Go agents nodenet replaces do
//   (-N the chains, -I the jumps, -A every rule; -R the rules that change). Where that would take
//   minutes it is run for a capped number of processes and extrapolated, labelled as such.
//
// The processes run in a bash script inside the namespace (`ip netns exec NS bash script`), each
// one started by bash and timed by bash's $EPOCHREALTIME: the time a Go agent in the node's netns
// pays for fork+exec+run, without `ip netns exec`'s per-call namespace set-up (~1.5 ms here) that
// such an agent does not pay. nodenet is timed around its promise, from JavaScript.
//
// Per scenario every method must end with the same rules: `iptables-legacy-save -t nat` restricted
// to the NODENET- chains and the jumps into them (with their positions), counters stripped, for
// nodenet legacy, restore and per-rule; nodenet's nft table against its legacy one by chain, comment
// and target. Any difference fails the run.
//
// The floor: nodenet's legacy apply reports how long libiptc's iptc_commit took (commitMs: the
// new blob assembled, IPT_SO_SET_REPLACE, the counters handed back) — the kernel's own replacement
// of the final table, which no legacy writer can go below.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { native, type RawNftRule } from '../lib/kernel/native.js';
import { netfilter } from '../lib/kernel/index.js';
import type { ApplyResult, NetfilterBackend, RuleSpec, TableState } from '../lib/kernel/netfilter/index.js';
import { decodeRule } from '../lib/kernel/netfilter/decode.js';
import { forgetNftViews } from '../lib/kernel/netfilter/nft/backend.js';
import { segmentParent } from '../lib/kernel/netfilter/nft/layout.js';
import { decodeComment } from '../lib/kernel/netfilter/nft/userdata.js';
import { applyOrder, parseFixesConfig, render, type ServiceInput } from '../lib/model/index.js';
import { median, ms, type BenchSection } from './report.js';

export interface RulesOptions {
  /** Service counts, e.g. [100, 1000, 10000]. */
  counts: number[];
  /** Repetitions of every method but the per-rule one. */
  reps: number;
  /** Repetitions of the per-rule method (default min(reps, 3)). */
  forkReps?: number;
  /** At most this many iptables processes per repetition; above, extrapolate (default 1,000). */
  forkCap?: number;
}

/** A section, plus the lines bench/run.ts quotes at the top of RESULTS.md. */
export interface RulesSection extends BenchSection {
  headline: string[];
}

const FOREIGN_CHAINS = 2000;
const FOREIGN_PER_CHAIN = 10;
const FOREIGN_RULES = FOREIGN_CHAINS * FOREIGN_PER_CHAIN;
const BACKGROUNDS = ['empty', '20,000 foreign'] as const;
type Background = (typeof BACKGROUNDS)[number];
const TARGET_VS_RESTORE = 1.1;

const M = {
  legacy: 'nodenet iptables-legacy',
  nft: 'nodenet nftables',
  restore: 'iptables-legacy-restore',
  fork: 'iptables-legacy per rule',
} as const;
type Method = (typeof M)[keyof typeof M];
const OPS = ['cold apply', 'no-change resync', 'one-Service change'] as const;
type Operation = (typeof OPS)[number];

// ---- namespaces and processes ------------------------------------------------------------------

// Namespaces not yet removed, so that an interrupted run removes them too.
const live = new Set<string>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const name of live) execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    process.kill(process.pid, signal);
  });
}

function ns(): { name: string; path: string; close(): void } {
  const name = `nnb-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  execFileSync('ip', ['netns', 'add', name]);
  live.add(name);
  return {
    name,
    path: `/var/run/netns/${name}`,
    close: () => {
      live.delete(name);
      execFileSync('ip', ['netns', 'del', name]);
    },
  };
}

function inNs(name: string, cmd: string, args: string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'inherit'] }).toString();
}

let scratch: string | undefined;
function scratchFile(name: string, text: string): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'nodenet-bench-'));
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs `body` (bash lines) in the namespace and returns the milliseconds between the two
 * $EPOCHREALTIME readings around it: what the commands cost when started by a process that already
 * is in the namespace.
 */
function timedInNs(name: string, body: string[]): number {
  const script = scratchFile(`script-${name}.sh`, ['set -e', 's=$EPOCHREALTIME', ...body, 'e=$EPOCHREALTIME', 'echo "$s $e"', ''].join('\n'));
  const out = inNs(name, 'bash', [script]).trim().split(/\s+/);
  return (Number(out[1]) - Number(out[0])) * 1000;
}

// ---- the state and its iptables forms ----------------------------------------------------------

/** 20,000 rules in 2,000 chains, shaped like kube-proxy's per-Service chains, in the given backend. */
function foreign(name: string, backend: 'iptables-legacy' | 'nftables'): void {
  if (backend === 'iptables-legacy') {
    const lines = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]'];
    for (let c = 0; c < FOREIGN_CHAINS; c++) lines.push(`:KUBE-SVC-${c.toString().padStart(12, '0')} - [0:0]`);
    lines.push('-A PREROUTING -j KUBE-SERVICES', '-A OUTPUT -j KUBE-SERVICES');
    for (let c = 0; c < FOREIGN_CHAINS; c++) {
      const chain = `KUBE-SVC-${c.toString().padStart(12, '0')}`;
      for (let r = 0; r < FOREIGN_PER_CHAIN - 1; r++) lines.push(`-A ${chain} -s 10.${r}.${c >> 8}.${c & 255}/32 -p tcp -m tcp --dport ${1000 + r} -j RETURN`);
      lines.push(`-A KUBE-SERVICES -d 10.96.${c >> 8}.${c & 255}/32 -p tcp -m tcp --dport 80 -j ${chain}`);
    }
    lines.push('COMMIT', '');
    inNs(name, 'iptables-legacy-restore', ['-w'], lines.join('\n'));
  } else {
    const lines = ['table ip kube-proxy {', '  chain nat-prerouting { type nat hook prerouting priority dstnat; jump services; }', '  chain services {'];
    for (let c = 0; c < FOREIGN_CHAINS; c++) lines.push(`    ip daddr 10.96.${c >> 8}.${c & 255} tcp dport 80 jump svc-${c}`);
    lines.push('  }');
    for (let c = 0; c < FOREIGN_CHAINS; c++) {
      lines.push(`  chain svc-${c} {`);
      for (let r = 0; r < FOREIGN_PER_CHAIN - 1; r++) lines.push(`    ip saddr 10.${r}.${c >> 8}.${c & 255} tcp dport ${1000 + r} return`);
      lines.push('  }');
    }
    lines.push('}', '');
    inNs(name, 'nft', ['-f', '-'], lines.join('\n'));
  }
}

function services(n: number, moved = -1): ServiceInput[] {
  return Array.from({ length: n }, (_, i) => ({
    metadata: { namespace: 'bench', name: `svc-${i}` },
    spec: { type: 'LoadBalancer', clusterIP: `10.97.${i >> 8}.${i & 255}`, clusterIPs: [`10.97.${i >> 8}.${i & 255}`], ipFamilies: ['IPv4'], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
    status: { loadBalancer: { ingress: [{ ip: i === moved ? `198.51.${i >> 8}.${i & 255}` : `203.0.${i >> 8}.${i & 255}` }] } },
  }));
}

function natState(n: number, moved = -1): TableState {
  const parsed = parseFixesConfig({ RULE_DROP_INVALID_INPUT_ENABLE: 'false', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' });
  if ('errors' in parsed) throw new Error(parsed.errors.join('; '));
  const desired = render({
    config: parsed.config,
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services: services(n, moved),
    dnsEndpointSlices: [],
    node: { metadata: { name: 'bench' }, spec: { podCIDRs: ['10.244.0.0/24'] } },
  });
  const nat = applyOrder(desired).find((s) => s.table === 'nat' && s.family === 'ipv4');
  if (!nat) throw new Error('the model rendered no nat table');
  return nat;
}

/** A rule exactly as iptables-legacy-save prints it: encoded as nodenet writes it, decoded as read back. */
function saveLine(chain: string, rule: RuleSpec, family: TableState['family']): string {
  const e = netfilter.encodeRule(rule, family);
  const target = e.target.standard ? { name: '', revision: 0, data: Buffer.alloc(0) } : { name: e.target.name, revision: e.target.revision, data: e.target.data };
  return netfilter.saveRule(chain, decodeRule({ ip: e.ip, matches: e.matches, target, verdict: e.target.name, packets: 0n, bytes: 0n }, family), family);
}

/** An iptables-save line's words, as the shell would split it (iptables-save quotes with "", escaping " and \ by \). */
function words(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < line.length) {
    if (line[i] === ' ') {
      i++;
      continue;
    }
    let w = '';
    if (line[i] === '"') {
      for (i++; i < line.length && line[i] !== '"'; i++) w += line[i] === '\\' ? line[++i] : line[i];
      i++;
    } else {
      for (; i < line.length && line[i] !== ' '; i++) w += line[i];
    }
    out.push(w);
  }
  return out;
}

/** One iptables invocation of the per-rule way, and the line iptables-restore would take for it. */
interface Command {
  args: string[];
  restore: string;
}

/** What the per-rule and restore methods write, derived once per state. */
interface Forms {
  chains: string[];
  /** `-A CHAIN ...` per rule, chain by chain. */
  rules: string[];
  /** `-A BUILTIN ...` per jump. */
  jumps: string[];
  /** The per-rule way: -N each chain, -I each jump (last first, as nodenet inserts), -A each rule. */
  commands: Command[];
  /** kube-proxy's way: the whole state for `iptables-restore --noflush` (jumps inserted on the cold apply only). */
  restoreCold: string;
  restoreRefill: string;
}

function forms(state: TableState): Forms {
  const chains = state.chains.map((c) => c.name);
  const rules = state.chains.flatMap((c) => c.rules.map((r) => saveLine(c.name, r, state.family)));
  const jumps = state.jumps.map((j) => saveLine(j.chain, j.rule, state.family));
  const insert = (line: string) => line.replace(/^-A (\S+)/, '-I $1 1');
  const commands: Command[] = [
    ...chains.map((c) => ({ args: ['-N', c], restore: `:${c} - [0:0]` })),
    ...[...jumps].reverse().map((l) => ({ args: words(insert(l)), restore: insert(l) })),
    ...rules.map((l) => ({ args: words(l), restore: l })),
  ];
  const header = ['*nat', ...chains.map((c) => `:${c} - [0:0]`)];
  return {
    chains,
    rules,
    jumps,
    commands,
    restoreCold: [...header, ...rules, ...[...jumps].reverse().map(insert), 'COMMIT', ''].join('\n'),
    restoreRefill: [...header, ...rules, 'COMMIT', ''].join('\n'),
  };
}

/** Restore text that leaves the table as if `commands` had run (their -N, -I and -A lines). */
function restoreOf(commands: Command[]): string {
  const heads = commands.filter((c) => c.restore.startsWith(':')).map((c) => c.restore);
  const rest = commands.filter((c) => !c.restore.startsWith(':')).map((c) => c.restore);
  return ['*nat', ...heads, ...rest, 'COMMIT', ''].join('\n');
}

const iptablesLine = (c: Command) => ['iptables-legacy', '-w', '-t', 'nat', ...c.args].map(sq).join(' ');

/** The per-rule way's change: -R every rule whose line differs (the chains keep their lengths). */
function replaceCommands(from: Forms, to: Forms): Command[] {
  if (from.rules.length !== to.rules.length) throw new Error('the change must keep the number of rules');
  const out: Command[] = [];
  const position = new Map<string, number>();
  for (let i = 0; i < to.rules.length; i++) {
    const chain = words(to.rules[i]!)[1]!;
    const at = (position.get(chain) ?? 0) + 1;
    position.set(chain, at);
    if (from.rules[i] !== to.rules[i]) out.push({ args: ['-R', chain, String(at), ...words(to.rules[i]!).slice(2)], restore: to.rules[i]! });
  }
  return out;
}

/**
 * nodenet's part of the nat table as iptables-legacy-save prints it: the NODENET- chains'
 * declarations and rules, and every rule that jumps into one, with its position in its chain;
 * counters stripped.
 */
function ownedSave(name: string): string[] {
  const out: string[] = [];
  const position = new Map<string, number>();
  for (const raw of inNs(name, 'iptables-legacy-save', ['-t', 'nat']).split('\n')) {
    const line = raw.replace(/^\[\d+:\d+\] /, '');
    if (line.startsWith(':NODENET-')) out.push(line.replace(/ \[\d+:\d+\]$/, ''));
    if (!line.startsWith('-A ')) continue;
    const chain = words(line)[1]!;
    const at = (position.get(chain) ?? 0) + 1;
    position.set(chain, at);
    if (chain.startsWith('NODENET-')) out.push(line);
    else if (/ -[jg] NODENET-/.test(line)) out.push(`#${at} ${line}`);
  }
  return out;
}

/** nodenet's nat rules as each backend holds them: "chain: comment target" per rule, in order. */
async function ownRules(backend: NetfilterBackend, path: string): Promise<string[]> {
  if (backend.name === 'iptables-legacy') {
    const table = await netfilter.read({ netns: path, table: 'nat' });
    return table.chains
      .filter((c) => c.name.startsWith('NODENET-'))
      .flatMap((c) => c.rules.map((r) => `${c.name}: ${String((r.matches.find((m) => m.name === 'comment')?.options as { comment?: string } | null)?.comment)} ${r.target.kind === 'extension' ? r.target.name : ''}`));
  }
  const dump = await native().nftDump({ family: 2, table: 'nodenet' }, path);
  // A long chain is held in segments (lib/kernel/netfilter/nft/segments.ts): read as a packet walks
  // it, each jump of the parent into a segment replaced by the segment's rules.
  const byChain = new Map<string, RawNftRule[]>();
  for (const r of dump.rules) byChain.set(r.chain, [...(byChain.get(r.chain) ?? []), r]);
  const walk = (chain: string): RawNftRule[] =>
    (byChain.get(chain) ?? []).flatMap((r) => {
      const target = r.exprs.find((e) => e.name === 'immediate' && typeof e.chain === 'string')?.chain as string | undefined;
      return target !== undefined && segmentParent(target) === chain ? walk(target) : [r];
    });
  return [...byChain.keys()]
    .filter((c) => c.startsWith('nat-NODENET-') && segmentParent(c) === null)
    .flatMap((c) => walk(c).map((r) => `${c.slice(4)}: ${String(decodeComment(r.userdata))} ${r.exprs.some((e) => e.name === 'nat') ? 'DNAT' : 'MARK'}`));
}

function firstDifference(a: string[], b: string[]): string {
  const i = a.findIndex((l, k) => l !== b[k]);
  const at = i < 0 ? a.length : i;
  return `line ${at + 1}: ${JSON.stringify(a[at] ?? '(end)')} against ${JSON.stringify(b[at] ?? '(end)')}`;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

// ---- measurements --------------------------------------------------------------------------------

interface Cell {
  ms: number[];
  /** nodenet legacy only: ApplyResult's commitMs, readMs, lockHoldMs per run. */
  commit: number[];
  read: number[];
  hold: number[];
  /** Per-rule cold apply: how it was obtained, when not run in full. */
  note?: string;
}

interface ForkPoint {
  /** Mean nat size (rules) while the batch ran, and the mean cost of one process. */
  size: number;
  perProcess: number;
}

/** Wall time of one scenario, for the projection of a full run. */
interface ScenarioTime {
  n: number;
  background: Background;
  /** Per repetition of everything but the per-rule method (set-up included). */
  perRep: number;
  /** Per repetition of the per-rule method, with how many processes it ran. */
  forkPerRep: number;
  forkProcesses: number;
}

class Results {
  readonly cells = new Map<string, Cell>();
  readonly failures: string[] = [];
  readonly forkPoints: ForkPoint[] = [];
  readonly times: ScenarioTime[] = [];

  cell(n: number, background: Background, method: Method, op: Operation): Cell {
    const key = `${n}|${background}|${method}|${op}`;
    let c = this.cells.get(key);
    if (!c) this.cells.set(key, (c = { ms: [], commit: [], read: [], hold: [] }));
    return c;
  }

  get(n: number, background: Background, method: Method, op: Operation): Cell | undefined {
    return this.cells.get(`${n}|${background}|${method}|${op}`);
  }
}

function log(line: string): void {
  process.stderr.write(`bench rules: ${line}\n`);
}

/** One repetition of a nodenet backend: cold apply, no-change resync, one-Service change. */
async function nodenetRep(r: Results, n: number, background: Background, backend: NetfilterBackend, base: TableState, moved: TableState, check: boolean): Promise<{ cold?: string[]; changed?: string[]; own?: string[] }> {
  const method = backend.name === 'iptables-legacy' ? M.legacy : M.nft;
  const node = ns();
  try {
    if (background !== 'empty') foreign(node.name, backend.name);
    const where = { netns: node.path };
    const record = (op: Operation, t: { ms: number; value: ApplyResult }) => {
      const c = r.cell(n, background, method, op);
      c.ms.push(t.ms);
      if (backend.name === 'iptables-legacy') {
        c.commit.push(t.value.commitMs ?? NaN);
        c.read.push(t.value.readMs ?? NaN);
        c.hold.push(t.value.lockHoldMs);
      }
    };
    const cold = await timed(() => backend.apply(base, where));
    if (!cold.value.committed) throw new Error(`${method}: the cold apply committed nothing`);
    record('cold apply', cold);
    const coldSave = check && backend.name === 'iptables-legacy' ? ownedSave(node.name) : undefined;
    const resync = await timed(() => backend.apply(base, where));
    if (resync.value.committed) throw new Error(`${method}: a resync of an unchanged state committed (${resync.value.changes.join('; ')})`);
    record('no-change resync', resync);
    const change = await timed(() => backend.apply(moved, where));
    if (!change.value.committed) throw new Error(`${method}: the one-Service change committed nothing`);
    record('one-Service change', change);
    if (!check) return {};
    return {
      cold: coldSave,
      changed: backend.name === 'iptables-legacy' ? ownedSave(node.name) : undefined,
      own: await ownRules(backend, node.path),
    };
  } finally {
    node.close();
    // The backend keeps a view of each namespace's table (up to 8): views of namespaces that are
    // gone would only grow this process's heap, whose collection then slows every later cell.
    forgetNftViews();
  }
}

/** One repetition of kube-proxy's way: the whole state through iptables-legacy-restore --noflush. */
function restoreRep(r: Results, n: number, background: Background, base: Forms, moved: Forms, check: boolean): { cold?: string[]; changed?: string[] } {
  const node = ns();
  try {
    if (background !== 'empty') foreign(node.name, 'iptables-legacy');
    const cold = scratchFile(`restore-cold-${n}.txt`, base.restoreCold);
    const refill = scratchFile(`restore-refill-${n}.txt`, moved.restoreRefill);
    r.cell(n, background, M.restore, 'cold apply').ms.push(timedInNs(node.name, [`iptables-legacy-restore -w --noflush < ${sq(cold)}`]));
    const coldSave = check ? ownedSave(node.name) : undefined;
    r.cell(n, background, M.restore, 'one-Service change').ms.push(timedInNs(node.name, [`iptables-legacy-restore -w --noflush < ${sq(refill)}`]));
    return check ? { cold: coldSave, changed: ownedSave(node.name) } : {};
  } finally {
    node.close();
  }
}

/**
 * One repetition of the per-rule way. In full when it takes at most `cap` processes; otherwise
 * `cap/2` processes at the start of the table's growth (the first commands, into the empty or
 * foreign nat) and `cap/2` at its end (the last commands, into a nat restored to hold everything
 * before them), and the cold apply extrapolated as all commands × the mean of the two batches'
 * per-process costs — exact when a process's cost grows linearly with the table, as each reads
 * and rewrites all of it. Either way the node ends with the whole state, and the change (-R of
 * the rules that differ) is measured, not extrapolated.
 */
function forkRep(r: Results, n: number, background: Background, base: Forms, moved: Forms, cap: number, check: boolean): { cold?: string[]; changed?: string[]; processes: number } {
  const all = base.commands;
  const foreignRules = background === 'empty' ? 0 : FOREIGN_RULES + 2;
  const change = replaceCommands(base, moved);
  const cell = r.cell(n, background, M.fork, 'cold apply');
  const node = ns();
  try {
    if (background !== 'empty') foreign(node.name, 'iptables-legacy');
    let processes: number;
    let coldSave: string[] | undefined;
    if (all.length <= cap) {
      const t = timedInNs(node.name, all.map(iptablesLine));
      cell.ms.push(t);
      r.forkPoints.push({ size: foreignRules + all.length / 2, perProcess: t / all.length });
      processes = all.length;
      if (check) coldSave = ownedSave(node.name);
    } else {
      const k = Math.floor(cap / 2);
      const tail = all.slice(all.length - k);
      if (tail.some((c) => c.args[0] !== '-A')) throw new Error('the capped per-rule run needs more rules than processes');
      const start = ns();
      let first: number;
      try {
        if (background !== 'empty') foreign(start.name, 'iptables-legacy');
        first = timedInNs(start.name, all.slice(0, k).map(iptablesLine)) / k;
      } finally {
        start.close();
      }
      inNs(node.name, 'iptables-legacy-restore', ['-w', '--noflush'], restoreOf(all.slice(0, all.length - k)));
      const last = timedInNs(node.name, tail.map(iptablesLine)) / k;
      cell.ms.push((all.length * (first + last)) / 2);
      cell.note = `extrapolated from ${(2 * k).toLocaleString('en-US')} of ${all.length.toLocaleString('en-US')} processes`;
      const rulesAt = (i: number) => foreignRules + Math.max(0, i - base.chains.length);
      r.forkPoints.push({ size: rulesAt(k / 2), perProcess: first }, { size: rulesAt(all.length - k / 2), perProcess: last });
      processes = 2 * k;
    }
    r.cell(n, background, M.fork, 'one-Service change').ms.push(timedInNs(node.name, change.map(iptablesLine)));
    return { cold: coldSave, changed: check ? ownedSave(node.name) : undefined, processes: processes + change.length };
  } finally {
    node.close();
  }
}

function compare(r: Results, scenario: string, what: string, saves: Array<[string, string[] | undefined]>): void {
  const present = saves.filter((s): s is [string, string[]] => s[1] !== undefined);
  const [refName, ref] = present[0]!;
  for (const [name, lines] of present.slice(1)) {
    if (lines.length !== ref.length || lines.some((l, i) => l !== ref[i])) {
      r.failures.push(`${scenario}, ${what}: ${name} ended with other rules than ${refName} (${lines.length} lines against ${ref.length}; ${firstDifference(lines, ref)})`);
    }
  }
}

async function scenario(r: Results, n: number, background: Background, reps: number, forkReps: number, cap: number): Promise<void> {
  const name = `${n.toLocaleString('en-US')} Services, ${background}`;
  const base = natState(n);
  const moved = natState(n, n >> 1);
  const baseForms = forms(base);
  const movedForms = forms(moved);
  const time: ScenarioTime = { n, background, perRep: 0, forkPerRep: 0, forkProcesses: 0 };
  const legacy: Array<{ cold?: string[]; changed?: string[]; own?: string[] }> = [];
  const restore: Array<{ cold?: string[]; changed?: string[] }> = [];
  const fork: Array<{ cold?: string[]; changed?: string[] }> = [];
  let nftOwn: string[] | undefined;
  for (let rep = 0; rep < reps; rep++) {
    const check = rep === 0;
    const t0 = performance.now();
    // Interleaved, so that a slow spell of the machine hits every method.
    legacy.push(await nodenetRep(r, n, background, netfilter.legacyBackend, base, moved, check));
    const nft = await nodenetRep(r, n, background, netfilter.nftBackend, base, moved, check);
    if (check) nftOwn = nft.own;
    restore.push(restoreRep(r, n, background, baseForms, movedForms, check));
    time.perRep += (performance.now() - t0) / reps;
    if (rep < forkReps) {
      const t1 = performance.now();
      const f = forkRep(r, n, background, baseForms, movedForms, cap, check);
      fork.push(f);
      time.forkPerRep += (performance.now() - t1) / forkReps;
      time.forkProcesses = f.processes;
    }
  }
  r.times.push(time);
  log(`${name}: ${(time.perRep / 1000).toFixed(1)} s per repetition of nodenet and restore, ${(time.forkPerRep / 1000).toFixed(1)} s per repetition of the per-rule way (${time.forkProcesses} processes)`);

  compare(r, name, 'after the cold apply', [[M.legacy, legacy[0]?.cold], [M.restore, restore[0]?.cold], [M.fork, fork[0]?.cold]]);
  compare(r, name, 'after the one-Service change', [[M.legacy, legacy[0]?.changed], [M.restore, restore[0]?.changed], [M.fork, fork[0]?.changed]]);
  const ruleLines = legacy[0]?.changed?.filter((l) => l.startsWith('-A NODENET-')).length;
  if (ruleLines !== 4 * n) r.failures.push(`${name}: ${M.legacy} holds ${ruleLines} rules instead of ${4 * n}`);
  // Chains in name order, rules in kernel order: the two backends list chains differently.
  const byChain = (lines: string[] | undefined) => lines && [...lines].sort((x, y) => x.split(':')[0]!.localeCompare(y.split(':')[0]!));
  const [a, b] = [byChain(legacy[0]?.own), byChain(nftOwn)];
  if (!a || !b || a.length !== b.length || a.some((l, i) => l !== b[i])) {
    r.failures.push(`${name}: ${M.legacy} holds ${a?.length} rules, ${M.nft} ${b?.length}; ${firstDifference(b ?? [], a ?? [])}`);
  }
}

// ---- the report ----------------------------------------------------------------------------------

const num = (v: number) => Math.round(v).toLocaleString('en-US');
/** Milliseconds, with thousands separated above a second (the per-rule way runs into minutes). */
const msr = (v: number) => (!Number.isFinite(v) ? '—' : v >= 1000 ? num(v) : ms(v));
const msCell = (c: Cell | undefined) => (c && c.ms.length ? msr(median(c.ms)) : '—');
const ratio = (x: number, y: number) => {
  const v = x / y;
  if (!Number.isFinite(v)) return '—';
  return v >= 100 ? num(v) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
};
const med = (c: Cell | undefined, pick: (c: Cell) => number[]) => (c && pick(c).length ? median(pick(c)) : NaN);

function projection(r: Results, counts: number[], reps: number, forkReps: number, cap: number): string {
  // Seconds of one default run (7 reps; 3 of the per-rule way; 100, 1,000, 10,000 Services) from
  // this run: per repetition, nodenet+restore grow linearly with the Service count (fitted per
  // background), the per-rule way costs min(processes, cap) × a per-process cost linear in the
  // size of the table (fitted over every batch measured).
  const fit = (pts: Array<[number, number]>): ((x: number) => number) => {
    if (pts.length === 0) return () => NaN;
    if (pts.length === 1 || new Set(pts.map((p) => p[0])).size === 1) {
      const [x, y] = pts[pts.length - 1]!;
      return (v) => (y * v) / x;
    }
    const mx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
    const my = pts.reduce((s, p) => s + p[1], 0) / pts.length;
    const slope = pts.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0) / pts.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
    return (v) => Math.max(0, my + slope * (v - mx));
  };
  const perProcess = fit(r.forkPoints.map((p) => [p.size, p.perProcess]));
  const estimate = (sizes: number[], nReps: number, nForkReps: number) => {
    let total = 0;
    for (const background of BACKGROUNDS) {
      const perRep = fit(r.times.filter((t) => t.background === background).map((t) => [t.n, t.perRep]));
      const foreignRules = background === 'empty' ? 0 : FOREIGN_RULES;
      for (const n of sizes) {
        const commands = 4 + 4 * n;
        const processes = Math.min(commands, cap);
        const forkRep = processes * perProcess(foreignRules + commands / 2) + perRep(n) / 3;
        total += nReps * perRep(n) + nForkReps * forkRep;
      }
    }
    return total / 1000;
  };
  const thisRun = r.times.reduce((s, t) => s + reps * t.perRep + forkReps * t.forkPerRep, 0) / 1000;
  const took = `this run's rule programming took ${thisRun.toFixed(0)} s (${counts.join(', ')} Services, ${reps} repetitions)`;
  // Below 1,000 Services the fixed costs (namespaces, foreign rules) hide how the time grows.
  if (Math.max(...r.times.map((t) => t.n)) < 1000) return `${took}; run 1,000 Services or more for a projection of the default run`;
  const full = estimate([100, 1000, 10000], 7, 3);
  return `${took}; projected for the default run (100, 1,000, 10,000 Services, 7 repetitions, 3 of the per-rule way): ~${(full / 60).toFixed(0)} min`;
}

function report(r: Results, counts: number[], reps: number, forkReps: number, cap: number): RulesSection[] {
  const failures = [...r.failures];
  const headline: string[] = [];

  const methods = [M.legacy, M.nft, M.restore, M.fork];
  const main = ['| Services | node | method | cold apply (ms) | no-change resync (ms) | one-Service change (ms) |', '|---:|---|---|---:|---:|---:|'];
  for (const n of counts) {
    for (const background of BACKGROUNDS) {
      for (const method of methods) {
        const cold = r.get(n, background, method, 'cold apply');
        const note = cold?.note ? ` (${cold.note})` : '';
        main.push(`| ${num(n)} | ${background} | ${method} | ${msCell(cold)}${note} | ${msCell(r.get(n, background, method, 'no-change resync'))} | ${msCell(r.get(n, background, method, 'one-Service change'))} |`);
      }
    }
  }

  const ratios = [
    `| Services | node | cold: nodenet / restore | change: nodenet / restore | cold: per rule / nodenet | change: per rule / nodenet |`,
    '|---:|---|---:|---:|---:|---:|',
  ];
  let worst = 0;
  for (const n of counts) {
    for (const background of BACKGROUNDS) {
      const cells = (m: Method, op: Operation) => med(r.get(n, background, m, op), (c) => c.ms);
      const cold = cells(M.legacy, 'cold apply') / cells(M.restore, 'cold apply');
      const change = cells(M.legacy, 'one-Service change') / cells(M.restore, 'one-Service change');
      const forkCold = r.get(n, background, M.fork, 'cold apply');
      const extrapolated = forkCold?.note ? ' (extrapolated)' : '';
      ratios.push(
        `| ${num(n)} | ${background} | ${cold.toFixed(2)} | ${change.toFixed(2)} | ${ratio(cells(M.fork, 'cold apply'), cells(M.legacy, 'cold apply'))}${extrapolated} | ${ratio(cells(M.fork, 'one-Service change'), cells(M.legacy, 'one-Service change'))} |`,
      );
      for (const v of [cold, change]) if (Number.isFinite(v)) worst = Math.max(worst, v);
      for (const [op, v] of [['cold apply', cold], ['one-Service change', change]] as const) {
        if (Number.isFinite(v) && v > TARGET_VS_RESTORE) failures.push(`target missed: ${M.legacy} / ${M.restore} = ${v.toFixed(2)} for the ${op} at ${num(n)} Services, ${background} node (target ≤ ${TARGET_VS_RESTORE})`);
      }
    }
  }

  const floor = [
    '| Services | node | operation | nodenet (ms) | read (ms) | commit = floor (ms) | lock held (ms) | nodenet / floor |',
    '|---:|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const n of counts) {
    for (const background of BACKGROUNDS) {
      for (const op of ['cold apply', 'one-Service change'] as const) {
        const c = r.get(n, background, M.legacy, op);
        const total = med(c, (x) => x.ms);
        const commit = med(c, (x) => x.commit);
        floor.push(`| ${num(n)} | ${background} | ${op} | ${msr(total)} | ${msr(med(c, (x) => x.read))} | ${msr(commit)} | ${msr(med(c, (x) => x.hold))} | ${ratio(total, commit)} |`);
      }
    }
  }

  const backends = ['| Services | operation | backend | empty node (ms) | 20,000 foreign rules (ms) | foreign / empty |', '|---:|---|---|---:|---:|---:|'];
  for (const n of counts) {
    for (const op of OPS) {
      for (const method of [M.legacy, M.nft]) {
        const empty = med(r.get(n, 'empty', method, op), (c) => c.ms);
        const full = med(r.get(n, '20,000 foreign', method, op), (c) => c.ms);
        backends.push(`| ${num(n)} | ${op} | ${method} | ${msr(empty)} | ${msr(full)} | ${ratio(full, empty)} |`);
        // nf_tables batches touch only nodenet's table, so 20,000 rules elsewhere must not make a
        // one-Service change dearer (a whole-table replacement, as libiptc does, would).
        if (method === M.nft && op === 'one-Service change' && full / empty > 1.5) {
          failures.push(`${M.nft} one-Service change at ${num(n)} Services costs ${(full / empty).toFixed(2)}× in a node with 20,000 foreign rules`);
        }
      }
    }
  }

  // The headline: the largest size measured, in the node with foreign rules (the realistic one).
  const n = counts[counts.length - 1]!;
  for (const background of BACKGROUNDS) {
    const get = (m: Method, op: Operation) => med(r.get(n, background, m, op), (c) => c.ms);
    const commit = med(r.get(n, background, M.legacy, 'cold apply'), (c) => c.commit);
    headline.push(
      `Rule programming, ${num(n)} Services, ${background} nat: nodenet (libiptc) cold apply ${msr(get(M.legacy, 'cold apply'))} ms = ` +
        `${ratio(get(M.legacy, 'cold apply'), get(M.restore, 'cold apply'))}× iptables-legacy-restore, ` +
        `${ratio(get(M.legacy, 'cold apply'), commit)}× the kernel's own commit (${msr(commit)} ms); ` +
        `one-Service change ${ratio(get(M.legacy, 'one-Service change'), get(M.restore, 'one-Service change'))}× restore; ` +
        `one iptables process per rule: ${ratio(get(M.fork, 'cold apply'), get(M.legacy, 'cold apply'))}× nodenet${r.get(n, background, M.fork, 'cold apply')?.note ? ' (extrapolated)' : ''}.`,
    );
  }
  const independence = (m: Method) => ratio(med(r.get(n, '20,000 foreign', m, 'one-Service change'), (c) => c.ms), med(r.get(n, 'empty', m, 'one-Service change'), (c) => c.ms));
  headline.push(
    `Worst nodenet/restore ratio over all sizes: ${worst.toFixed(2)} (target ≤ ${TARGET_VS_RESTORE}). ` +
      `A one-Service change at ${num(n)} Services with 20,000 foreign rules costs ${independence(M.nft)}× what it costs in an empty node through nftables, ${independence(M.legacy)}× through libiptc.`,
  );

  const proj = projection(r, counts, reps, forkReps, cap);
  log(proj);

  const lines = [
    'The External-IP fix, 4 rules per LoadBalancer Service (2 in NODENET-EXTERNAL-HOST, 2 in',
    'NODENET-EXTERNAL-PODS) and a jump into each from OUTPUT and PREROUTING, written into a nat table',
    'that is empty or already holds 20,000 foreign rules (2,000 chains of 10, as kube-proxy leaves',
    'them; for nftables in an `ip kube-proxy` table). Every cell is the median of its repetitions, each',
    `in fresh network namespaces: ${reps} for nodenet and restore, ${forkReps} for one process per rule.`,
    '',
    '- **nodenet**: `netfilter.apply` (libiptc, under the xtables lock, one commit) and the nftables',
    '  backend (one nf_tables batch), timed around the promise. The no-change resync must commit nothing.',
    '- **iptables-legacy-restore**: `iptables-legacy-restore -w --noflush` fed the whole state, as',
    '  kube-proxy does: the cold apply declares the chains, appends every rule and inserts the jumps',
    '  (`-I PREROUTING 1 ...`); the change declares the chains again (which flushes them under',
    '  --noflush) and refills them (the jumps are already there).',
    '- **per rule**: one `iptables-legacy -w -t nat` process per command (`-N` per chain, `-I ... 1` per',
    '  jump, `-A` per rule; the change `-R`s the rules that differ), as the Go agents nodenet replaces do.',
    `  Where that takes more than ${num(cap)} processes, ${num(cap / 2)} run at the start of the table's`,
    `  growth and ${num(cap / 2)} at its end (into a nat restored to hold everything before them), and the`,
    '  cold apply is all commands × the mean of the two per-process costs (each process reads and',
    '  rewrites the whole table, so its cost grows linearly with it). The change is always measured.',
    '- The processes are started by bash inside the namespace and timed with `$EPOCHREALTIME`, so they',
    "  pay fork+exec as an agent in the node's netns does, not `ip netns exec`'s set-up.",
    '',
    'Every method must end with the same rules: `iptables-legacy-save -t nat` restricted to the',
    "NODENET- chains and the jumps into them (with their positions) for nodenet, restore and per rule",
    "(after the cold apply where per rule ran in full, after the change always); nodenet's nftables",
    'table against its legacy one by chain, comment and target.',
    '',
    ...main,
    '',
    `### Ratios (target: nodenet / restore ≤ ${TARGET_VS_RESTORE})`,
    '',
    ...ratios,
    '',
    '### The floor: the kernel replacing the table',
    '',
    "libiptc's `iptc_commit` inside nodenet's legacy apply (ApplyResult.commitMs): the final blob",
    'assembled, `IPT_SO_SET_REPLACE`, the counters handed back: what replacing the table costs, which',
    "no writer of a legacy table avoids. `read` is `iptc_init` (the kernel's copy of the table and",
    "libiptc's parse of it); `lock held` is how long nodenet held the xtables lock, i.e. how long",
    'another writer (kube-proxy, Calico) would have waited for it.',
    '',
    ...floor,
    '',
    '### Backends: 20,000 foreign rules against an empty node',
    '',
    ...backends,
    '',
    `<sub>${proj}.</sub>`,
  ];
  return [{ title: 'Rule programming: the External-IP fix (4 rules per LoadBalancer Service)', lines, failures, headline }];
}

/**
 * One untimed round of every method, so that the first measured repetition does not pay for
 * compiling nodenet's JavaScript (an agent's is compiled after its first resync) or for loading
 * iptables' binaries and extensions from disk.
 */
async function warmUp(): Promise<void> {
  const base = natState(100);
  const moved = natState(100, 50);
  const f = forms(base);
  for (const backend of [netfilter.legacyBackend, netfilter.nftBackend]) {
    const node = ns();
    try {
      for (let i = 0; i < 3; i++) await backend.apply(i % 2 ? moved : base, { netns: node.path });
    } finally {
      node.close();
    }
  }
  const node = ns();
  try {
    const checks = f.commands.filter((c) => c.args[0] === '-A').slice(0, 10);
    timedInNs(node.name, [`iptables-legacy-restore -w --noflush < ${sq(scratchFile('warm-up.txt', f.restoreCold))}`, ...checks.map((c) => iptablesLine({ ...c, args: ['-C', ...c.args.slice(1)] }))]);
  } finally {
    node.close();
  }
}

/** The rule-programming sections of bench/RESULTS.md. */
export async function rulesBenchmarks(options: RulesOptions): Promise<RulesSection[]> {
  const { counts, reps } = options;
  const forkReps = options.forkReps ?? Math.min(reps, 3);
  const cap = options.forkCap ?? 1000;
  const r = new Results();
  try {
    await warmUp();
    for (const n of counts) {
      for (const background of BACKGROUNDS) {
        try {
          await scenario(r, n, background, reps, forkReps, cap);
        } catch (e) {
          r.failures.push(`${n.toLocaleString('en-US')} Services, ${background}: ${e instanceof Error ? e.message : String(e)}`);
          log(`${n} Services, ${background}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
        }
      }
    }
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
  return report(r, counts, reps, forkReps, cap);
}
