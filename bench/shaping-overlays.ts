// Shaping and overlays, one scenario family of `npm run bench` (issue 9, part 4), each measured with
// the real agent (`nodenet agent --netns`, as its ServiceAccount, forking forbidden) against a real
// kube-apiserver + etcd from test/cluster, a network namespace playing its node:
//
// - Shaping: from a Pod bandwidth-annotation patch accepted by the API server to the new tbf
//   being in the kernel, over many changes across several pods (pod namespaces joined to the node
//   namespace by veths, as a veth CNI makes them); the kernel step alone, nodenet's addon against
//   one `tc qdisc change` process per change.
// - Overlays: one agent with a mesh VXLAN Link selecting every node; N Node objects created in one
//   burst, timed to the VXLAN device holding exactly their N all-zero FDB entries; then single
//   nodes joining and leaving; the same N entries made by one `bridge fdb append` process per entry
//   (a shell script's or an exec-based operator's way), by one `bridge -batch` and by the addon.
//
// Every scenario runs in fresh namespaces, removed pass or fail. A wrong end state (a pod without
// the rate last asked, an FDB that is not exactly the expected peers, methods that disagree) is a
// failure line, so bench/run.ts exits non-zero.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Node,
} from '@kubernetes/client-node';

import { fdb, qdiscs } from '../lib/kernel/index.js';
import { packageRoot } from '../lib/kernel/native.js';
import { bandwidthTbf } from '../lib/model/shaping/bandwidth.js';
import { applyAgentRbac, startAgent, type AgentProcess, type LogLine } from '../test/helpers/agent.js';
import { startCluster, type ClusterTest, type TestCluster } from '../test/helpers/cluster.js';
import { connectionReuse, kubeFixture } from '../test/helpers/kube.js';
import { makeNetns, type TestNetns } from '../test/helpers/netns.js';
import { podSandbox, type PodSandbox } from '../test/helpers/shaping.js';
import { median, ms, percentile, type BenchSection } from './report.js';

const ALL_ZERO_MAC = '00:00:00:00:00:00';
const GROUP = { group: 'nodenet.io', version: 'v1alpha1' };
/** Poll period of the kernel witnesses (one qdisc dump of one device, one FDB dump of one device). */
const POLL_MS = 1;
const WAIT_MS = 30_000;
/**
 * The agent's work queue starts runs of one key at least this far apart (lib/controller/work-queue.ts,
 * not configurable): a lone event runs at once, one within this time of the key's last run waits.
 */
const BATCH_DELAY_MS = 100;

const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive whole number, not ${JSON.stringify(raw)}`);
  return n;
};

const now = () => performance.now();
const epochOf = (perfMs: number) => performance.timeOrigin + perfMs;

/**
 * What the test helpers need of a tap test: teardowns run last-registered first, failures kept.
 * startCluster's `fail` is only called when the control plane does not start (it then exits).
 */
class Teardowns implements ClusterTest {
  private readonly fns: Array<() => unknown> = [];
  readonly failures: string[] = [];

  constructor(readonly name: string) {}

  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }

  passing(): boolean {
    return this.failures.length === 0;
  }

  comment(...message: unknown[]): void {
    process.stderr.write(`bench ${this.name}: ${message.map(String).join(' ')}\n`);
  }

  fail(message: string, extra: Record<string, unknown> = {}): boolean {
    this.failures.push(message);
    process.stderr.write(`bench ${this.name}: ${message}${Object.keys(extra).length ? ` ${JSON.stringify(extra)}` : ''}\n`);
    return false;
  }

  /** Runs every teardown (each one even if another failed); resolves with what went wrong. */
  async run(): Promise<string[]> {
    const errors: string[] = [];
    for (let fn = this.fns.pop(); fn; fn = this.fns.pop()) {
      try {
        await fn();
      } catch (e) {
        errors.push(`cleanup of ${this.name}: ${(e as Error).message}`);
      }
    }
    return [...this.failures, ...errors];
  }
}

/** Runs `body` with a fresh teardown scope; whatever it throws becomes a failure line. */
async function scoped<T>(name: string, failures: string[], body: (t: Teardowns) => Promise<T>): Promise<T | undefined> {
  const t = new Teardowns(name);
  let result: T | undefined;
  try {
    result = await body(t);
  } catch (e) {
    failures.push(`${name}: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    failures.push(...(await t.run()));
  }
  return result;
}

/**
 * Reads until `check` holds, one read about every POLL_MS; resolves with the time (performance.now())
 * at which the first read that saw it had completed. A read that throws counts as not yet.
 */
async function pollUntil(check: () => Promise<boolean>, what: () => string, timeoutMs = WAIT_MS): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const started = now();
    const ok = await check().catch(() => false);
    if (ok) return now();
    if (started > deadline) throw new Error(`not within ${timeoutMs} ms: ${what()}`);
    const wait = POLL_MS - (now() - started);
    if (wait > 0) await sleep(wait);
  }
}

function forked(cmd: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, (error, _stdout, stderr) => (error ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || error.message}`)) : resolve()));
    // A tool that exits before reading its input is judged by its exit status, not by EPIPE.
    child.stdin?.on('error', () => undefined);
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
async function inParallel<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A device that is up and leads nowhere: one end of a veth pair whose other end stays in the same
 * namespace (this kernel has no dummy driver).
 */
async function plainDevice(ns: TestNetns, name: string, address?: string): Promise<void> {
  await ns.exec('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}-peer`]);
  if (address) await ns.exec('ip', ['addr', 'add', address, 'dev', name]);
  await ns.exec('ip', ['link', 'set', `${name}-peer`, 'up']);
  await ns.exec('ip', ['link', 'set', name, 'up']);
}

const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
const stats = (xs: number[]) => (xs.length ? [ms(median(xs)), ms(percentile(xs, 99)), ms(Math.max(...xs))] : ['–', '–', '–']);
const ratio = (a: number[], b: number[]) => (a.length && b.length ? `${(median(a) / median(b)).toFixed(1)}×` : '–');

// ---------------------------------------------------------------------------------------------
// Shaping

type Direction = 'egress' | 'ingress';
const BANDWIDTH: Record<Direction, string> = { egress: 'kubernetes.io/egress-bandwidth', ingress: 'kubernetes.io/ingress-bandwidth' };
const INITIAL_MBIT = 100;

interface ShapedPod {
  name: string;
  box: PodSandbox;
  /** The last rate asked, in bits per second, per direction. */
  asked: Record<Direction, number>;
}

/** The rate (bits/s) of nodenet's root tbf on a device; null when its root is something else. */
async function nodenetTbfRate(at: { netns: string; device: string }): Promise<number | null> {
  const root = (await qdiscs.list(at)).find((q) => q.parent === 'root');
  return root?.kind === 'tbf' && root.handle === qdiscs.NODENET_ROOT_HANDLE && root.tbf ? root.tbf.rate : null;
}

interface ShapingSamples {
  fromSent: number[];
  fromResponse: number[];
  logFromResponse: number[];
  kernelAhead: number;
  addonChange: number[];
  tcChange: number[];
}

async function shapingScenario(cluster: TestCluster, podCount: number, changes: number, samples: ShapingSamples, failures: string[]): Promise<void> {
  await scoped('shaping', failures, async (t) => {
    const k = await kubeFixture(t, cluster);
    const node = await makeNetns(t);
    const nodeName = `bench-${k.namespace}`;
    await k.createNode({ name: nodeName, podCIDRs: ['10.244.1.0/24'], internalIPs: ['192.0.2.11'] });
    const pods: ShapedPod[] = [];
    for (let i = 0; i < podCount; i++) {
      const box = await podSandbox(t, node, `10.244.1.${10 + i}`);
      pods.push({ name: `shaped-${i}`, box, asked: { egress: INITIAL_MBIT * 1e6, ingress: INITIAL_MBIT * 1e6 } });
    }
    // The product's defaults (resync 60 s, info logs), not the e2e helper's 2 s / debug.
    const agent = await startAgent(t, { cluster, netns: node, env: { NODE_NAME: nodeName, RESYNC_PERIOD: '60s', NODENET_LOG_LEVEL: 'info' } });
    await agent.ready();

    const client = await connectionReuse(cluster.kc, 1);
    t.teardown(() => client.agent.destroy());
    const patchOptions = setHeaderOptions('Content-Type', PatchStrategy.MergePatch, client.options);
    const annotate = (pod: string, annotations: Record<string, string>) =>
      k.core.patchNamespacedPod({ name: pod, namespace: k.namespace, body: { metadata: { annotations } } }, patchOptions);
    const where = (p: ShapedPod, d: Direction) => (d === 'egress' ? { netns: p.box.pod.path, device: 'eth0' } : { netns: node.path, device: p.box.hostVeth });

    for (const p of pods) {
      await k.createPod({ name: p.name, nodeName, podIPs: [p.box.ip] });
      await annotate(p.name, { [BANDWIDTH.egress]: `${INITIAL_MBIT}M`, [BANDWIDTH.ingress]: `${INITIAL_MBIT}M` });
    }
    for (const p of pods) {
      for (const d of ['egress', 'ingress'] as const) {
        let seen: number | null = null;
        await pollUntil(async () => (seen = await nodenetTbfRate(where(p, d))) === p.asked[d], () => `${p.name} ${d}: initial tbf at ${p.asked[d]} bit/s (root has ${seen})`);
      }
    }

    for (let j = 0; j < changes; j++) {
      const p = pods[j % pods.length]!;
      // Rounds alternate egress (the pod's eth0) and ingress (its host-side veth); every rate is new.
      const d: Direction = Math.floor(j / pods.length) % 2 === 0 ? 'egress' : 'ingress';
      const mbit = INITIAL_MBIT + 1 + j;
      const bits = mbit * 1e6;
      const isOurs = (l: LogLine) => typeof l.msg === 'string' && l.msg.startsWith(`shaping of ${k.namespace}/${p.name}:`);
      const logsBefore = agent.logs().filter(isOurs).length;
      let seenRate: number | null = null;
      const seen = pollUntil(async () => (seenRate = await nodenetTbfRate(where(p, d))) === bits, () => `${p.name} ${d}: tbf at ${bits} bit/s (root has ${seenRate})`);
      seen.catch(() => undefined); // awaited below; a failed patch must not leave it unhandled
      const sent = now();
      await annotate(p.name, { [BANDWIDTH[d]]: `${mbit}M` });
      const answered = now();
      p.asked[d] = bits;
      const inKernel = await seen;
      samples.fromSent.push(inKernel - sent);
      samples.fromResponse.push(inKernel - answered);
      if (inKernel < answered) samples.kernelAhead++;
      const line = await nthLog(agent, isOurs, logsBefore, `${p.name}'s change to ${mbit}M`);
      if (typeof line.time === 'number') samples.logFromResponse.push(line.time - epochOf(answered));
      // Let the agent finish what follows an install (its Event) before the next change.
      await sleep(20);
    }

    for (const p of pods) {
      for (const d of ['egress', 'ingress'] as const) {
        const rate = await nodenetTbfRate(where(p, d));
        if (rate !== p.asked[d]) failures.push(`shaping: ${p.name} ${d} holds ${rate === null ? 'no nodenet tbf' : `${rate} bit/s`}, not the ${p.asked[d]} bit/s last asked`);
      }
    }
  });
}

/** The agent's n-th (from 0) log line that matches, waiting for it. */
async function nthLog(agent: AgentProcess, match: (l: LogLine) => boolean, n: number, what: string, timeoutMs = 5_000): Promise<LogLine> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const line = agent.logs().filter(match)[n];
    if (line) return line;
    if (now() > deadline) throw new Error(`the agent wrote no log line for ${what} within ${timeoutMs} ms`);
    await sleep(2);
  }
}

/**
 * The kernel step alone: the same tbf rate changes (tc qdisc change: what the agent does for a new
 * rate) on a device, through the addon and by one `tc` process each, in fresh namespaces; both must
 * leave the same tbf.
 */
async function kernelStep(changes: number, samples: ShapingSamples, failures: string[]): Promise<void> {
  await scoped('shaping kernel step', failures, (t) => kernelStepIn(t, changes, samples, failures));
}

async function kernelStepIn(t: Teardowns, changes: number, samples: ShapingSamples, failures: string[]): Promise<void> {
  const methods = {
    addon: async (ns: TestNetns, bits: number) => qdiscs.update({ netns: ns.path, device: 'd0', handle: qdiscs.NODENET_ROOT_HANDLE }, { kind: 'tbf', tbf: bandwidthTbf(bits) }),
    tc: async (ns: TestNetns, bits: number) => {
      const tbf = bandwidthTbf(bits);
      await forked('tc', ['-n', ns.name, 'qdisc', 'change', 'dev', 'd0', 'root', 'handle', qdiscs.NODENET_ROOT_HANDLE, 'tbf', 'rate', `${tbf.rate}bit`, 'burst', `${tbf.burst}`, 'limit', `${tbf.limit}`]);
    },
  };
  const finals: Record<string, string> = {};
  for (const [method, change] of Object.entries(methods)) {
    const ns = await makeNetns(t);
    await plainDevice(ns, 'd0');
    await qdiscs.replace({ netns: ns.path, device: 'd0', handle: qdiscs.NODENET_ROOT_HANDLE }, { kind: 'tbf', tbf: bandwidthTbf(INITIAL_MBIT * 1e6) });
    const out = method === 'addon' ? samples.addonChange : samples.tcChange;
    for (let j = 0; j < changes; j++) {
      const started = now();
      await change(ns, (INITIAL_MBIT + 1 + j) * 1e6);
      out.push(now() - started);
    }
    const root = (await qdiscs.list({ netns: ns.path, device: 'd0' })).find((q) => q.parent === 'root');
    finals[method] = JSON.stringify(root?.tbf ? { kind: root.kind, handle: root.handle, rate: root.tbf.rate, burst: root.tbf.burst, limit: root.tbf.limit } : root?.kind);
  }
  if (finals.addon !== finals.tc) failures.push(`shaping kernel step: the addon left ${finals.addon}, tc left ${finals.tc}`);
}

function shapingSection(s: ShapingSamples, podCount: number, changes: number, failures: string[]): BenchSection {
  const lines = [
    `One agent, ${podCount} annotated pods on its node (each a network namespace behind a veth), ${changes} changes`,
    'of one bandwidth annotation at a time, rounds alternating `kubernetes.io/egress-bandwidth` (a tbf on the',
    "pod's eth0) and `ingress-bandwidth` (on its host-side veth), every change a new rate (netem is absent",
    "from this kernel; tbf is what a bandwidth annotation installs). Each change is a merge patch of the Pod;",
    'the witness is the kernel itself: the addon\'s `qdiscs.list` of that one device (one RTM_GETQDISC dump,',
    `a fraction of a millisecond) from the bench process, one read about every ${POLL_MS} ms, started before`,
    'the patch is sent, until nodenet\'s root tbf reports the new rate; the time is when that read returned.',
    "The agent's own log line for the install is a cross-check only: its timestamp has 1 ms resolution and",
    'it is written after the kernel acknowledged, so it neither proves the kernel state nor is finer than the',
    'read. "From response" is the latency the brief asks for (the API server accepted the change at the latest',
    'then); the watch event can reach the agent before the response reaches the client, so a change can be in',
    'the kernel before its own response arrives (counted below), and "from sent" bounds it from above.',
    '',
  ];
  lines.push(
    row(['annotation change → new tbf in the kernel', 'changes', 'p50 (ms)', 'p99 (ms)', 'max (ms)']),
    '|---|---:|---:|---:|---:|',
    row(['from the patch sent', s.fromSent.length, ...stats(s.fromSent)]),
    row(["from the patch's response (API server accepted)", s.fromResponse.length, ...stats(s.fromResponse)]),
    row(["agent's log line of the install (its timestamp), from the response", s.logFromResponse.length, ...stats(s.logFromResponse)]),
    '',
    `A lone change is reconciled as soon as its watch event arrives: the agent's work queue only keeps two runs of one`,
    `pod's key ${BATCH_DELAY_MS} ms apart (lib/controller/work-queue.ts), so a burst of events is still one reconcile`,
    'or a few. What is left is the watch event reaching the agent, the reconcile and the netlink change.',
    `The kernel held the new rate before the patch's response arrived in ${s.kernelAhead} of ${s.fromResponse.length} changes.`,
    '',
    `The kernel step alone, the same ${changes} rate changes of a root tbf (\`tc qdisc change\`, what the agent does`,
    'for a new rate) on a veth in a fresh namespace, one at a time; both methods must leave the same tbf:',
    '',
    row(['method', 'changes', 'p50 (ms)', 'p99 (ms)', 'max (ms)', 'p50 / addon']),
    '|---|---:|---:|---:|---:|---:|',
    row(["nodenet's addon, `qdiscs.update`", s.addonChange.length, ...stats(s.addonChange), '1.0×']),
    row(['one `tc -n NS qdisc change … tbf` process per change', s.tcChange.length, ...stats(s.tcChange), ratio(s.tcChange, s.addonChange)]),
  );
  return { title: 'Shaping: annotation change to qdisc installed', lines, failures };
}

// ---------------------------------------------------------------------------------------------
// Overlays

interface OverlaySamples {
  burst: number[];
  fromBurstStart: number[];
  fromLastCreate: number[];
  firstEntry: number[];
  join: number[];
  joinFromSent: number[];
  leave: number[];
  leaveFromSent: number[];
  addon: number[];
  fork: number[];
  batch: number[];
}

const peerIP = (block: number, i: number) => `10.${block}.${(i + 1) >> 8}.${(i + 1) & 255}`;

async function meshOf(netns: string, device: string): Promise<string[]> {
  const entries = await fdb.list({ netns, device });
  return entries.filter((e) => e.mac === ALL_ZERO_MAC && e.dst !== null).map((e) => e.dst!).sort();
}

/** What the methods must agree on: every all-zero entry with its state and flags. */
async function meshEntries(netns: string, device: string): Promise<string> {
  const entries = await fdb.list({ netns, device });
  return JSON.stringify(
    entries
      .filter((e) => e.mac === ALL_ZERO_MAC)
      .map((e) => `${e.dst} ${e.state} ${e.self ? 'self' : ''} vni=${e.vni} port=${e.port} via=${e.via}`)
      .sort(),
  );
}

function setDiff(have: string[], want: string[]): string {
  const h = new Set(have);
  const w = new Set(want);
  const missing = want.filter((x) => !h.has(x));
  const extra = have.filter((x) => !w.has(x));
  return `${have.length} entries, ${missing.length} missing (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}), ${extra.length} extra (${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''})`;
}

const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

async function overlayRep(cluster: TestCluster, rep: number, nodeCount: number, joins: number, samples: OverlaySamples, failures: string[], agreed: Record<string, string>): Promise<void> {
  await scoped(`overlays rep ${rep + 1}`, failures, async (t) => {
    const k = await kubeFixture(t, cluster);
    const core = cluster.kc.makeApiClient(CoreV1Api);
    const custom = cluster.kc.makeApiClient(CustomObjectsApi);
    const label = { 'bench.nodenet.io/overlay': k.namespace };
    const ns = await makeNetns(t);
    // The underlay: a veth eth0 with the node's InternalIP (nothing has to be reachable; the peers'
    // Node objects are all there is of them).
    const selfIP = '10.200.0.1';
    await plainDevice(ns, 'eth0', `${selfIP}/16`);
    const selfName = `bench-self-${k.namespace}`;
    await k.createNode({ name: selfName, internalIPs: [selfIP], labels: label });
    t.teardown(() => custom.deleteClusterCustomObject({ ...GROUP, plural: 'nodenetworkstatuses', name: selfName }).catch(() => undefined));

    const objects = linkObjects(k.namespace, label);
    t.teardown(async () => {
      for (const o of objects) await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: o.metadata.name }).catch(() => undefined);
    });
    const client = await connectionReuse(cluster.kc, 32);
    t.teardown(() => client.agent.destroy());
    const created = new Set<string>();
    t.teardown(async () => {
      await inParallel([...created], 32, async (name) => {
        await core.deleteNode({ name }, client.options).catch((e: { code?: number }) => {
          if (e.code !== 404) throw e;
        });
      });
    });

    const agent = await startAgent(t, { cluster, netns: ns, env: { NODE_NAME: selfName, OVERLAYS: 'true', SHAPING: 'false', RESYNC_PERIOD: '60s', NODENET_LOG_LEVEL: 'info' } });
    await agent.ready();
    for (const o of objects) await custom.createClusterCustomObject({ ...GROUP, plural: 'links', body: o });
    await pollUntil(async () => (await meshOf(ns.path, 'vx-ov')).length === 0, () => 'the agent made vx-ov with an empty mesh');

    const createNode = async (name: string, ip: string): Promise<void> => {
      created.add(name);
      const body: V1Node = {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/hostname': name, ...label } },
        // As a kubelet registers: the addresses in the create (the apiserver keeps a new Node's status).
        status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }] },
      };
      const node = await core.createNode({ body }, client.options);
      if (!node.status?.addresses?.some((a) => a.type === 'InternalIP')) {
        await core.patchNodeStatus({ name, body: { status: body.status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch, client.options));
      }
    };

    // The burst.
    const peers = Array.from({ length: nodeCount }, (_, i) => ({ name: `bench-${rep}-${i}-${k.namespace}`, ip: peerIP(201, i) }));
    const want = peers.map((p) => p.ip).sort();
    let have: string[] = [];
    let first: number | null = null;
    const converged = pollUntil(
      async () => {
        have = await meshOf(ns.path, 'vx-ov');
        if (first === null && have.length > 0) first = now();
        return same(have, want);
      },
      () => `vx-ov holding the ${nodeCount} peers: ${setDiff(have, want)}`,
      WAIT_MS + nodeCount * 100,
    );
    converged.catch(() => undefined);
    const burstStart = now();
    await inParallel(peers, 32, (p) => createNode(p.name, p.ip));
    const lastCreate = now();
    const done = await converged;
    samples.burst.push(lastCreate - burstStart);
    samples.fromBurstStart.push(done - burstStart);
    samples.fromLastCreate.push(done - lastCreate);
    if (first !== null) samples.firstEntry.push(first - burstStart);
    agreed.agent = await meshEntries(ns.path, 'vx-ov');

    // Single nodes joining and leaving a converged mesh of nodeCount.
    for (let j = 0; j < joins; j++) {
      const joiner = { name: `bench-${rep}-join-${j}-${k.namespace}`, ip: peerIP(202, j) };
      const withJoiner = [...want, joiner.ip].sort();
      let seen: string[] = [];
      const joined = pollUntil(async () => same((seen = await meshOf(ns.path, 'vx-ov')), withJoiner), () => `${joiner.ip} joining: ${setDiff(seen, withJoiner)}`);
      joined.catch(() => undefined);
      const sent = now();
      await createNode(joiner.name, joiner.ip);
      const answered = now();
      const inKernel = await joined;
      samples.join.push(inKernel - answered);
      samples.joinFromSent.push(inKernel - sent);
      await sleep(20);

      const left = pollUntil(async () => same((seen = await meshOf(ns.path, 'vx-ov')), want), () => `${joiner.ip} leaving: ${setDiff(seen, want)}`);
      left.catch(() => undefined);
      const leaveSent = now();
      await core.deleteNode({ name: joiner.name }, client.options);
      const leaveAnswered = now();
      const gone = await left;
      samples.leave.push(gone - leaveAnswered);
      samples.leaveFromSent.push(gone - leaveSent);
      await sleep(20);
    }
    const final = await meshOf(ns.path, 'vx-ov');
    if (!same(final, want)) failures.push(`overlays rep ${rep + 1}: the final FDB of vx-ov is not exactly the ${nodeCount} peers: ${setDiff(final, want)}`);
  });
}

function linkObjects(suffix: string, label: Record<string, string>) {
  const nodeSelector = { matchLabels: label };
  return [
    { apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', metadata: { name: `bench-uplink-${suffix}` }, spec: { interfaceName: 'eth0', nodeSelector, device: {} } },
    { apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', metadata: { name: `bench-bridge-${suffix}` }, spec: { interfaceName: 'br-ov', nodeSelector, bridge: {} } },
    {
      apiVersion: 'nodenet.io/v1alpha1',
      kind: 'Link',
      metadata: { name: `bench-vxlan-${suffix}` },
      spec: { interfaceName: 'vx-ov', nodeSelector, master: `bench-bridge-${suffix}`, vxlan: { vni: 42, underlay: `bench-uplink-${suffix}`, peers: { mesh: {} } } },
    },
  ];
}

/**
 * The same N all-zero entries on the same kind of device (a VXLAN, VNI 42 on 4789 over a veth
 * eth0, in a bridge), each method in a fresh namespace, one entry at a time as a mesh operator
 * adds them; all must leave what the agent left.
 */
async function overlayAlternatives(rep: number, nodeCount: number, samples: OverlaySamples, failures: string[], agreed: Record<string, string>): Promise<void> {
  const ips = Array.from({ length: nodeCount }, (_, i) => peerIP(201, i));
  const want = [...ips].sort();
  const methods: Array<[string, number[], (ns: TestNetns) => Promise<void>]> = [
    [
      'addon',
      samples.addon,
      async (ns) => {
        for (const dst of ips) await fdb.add({ netns: ns.path, device: 'vx-ov', mac: ALL_ZERO_MAC, dst, append: true });
      },
    ],
    [
      'fork',
      samples.fork,
      async (ns) => {
        for (const dst of ips) await forked('bridge', ['-n', ns.name, 'fdb', 'append', ALL_ZERO_MAC, 'dev', 'vx-ov', 'dst', dst, 'self', 'permanent']);
      },
    ],
    [
      'batch',
      samples.batch,
      async (ns) => {
        await forked('bridge', ['-n', ns.name, '-batch', '-'], ips.map((dst) => `fdb append ${ALL_ZERO_MAC} dev vx-ov dst ${dst} self permanent\n`).join(''));
      },
    ],
  ];
  for (const [method, out, make] of methods) {
    await scoped(`overlays rep ${rep + 1} ${method}`, failures, async (t) => {
      const ns = await makeNetns(t);
      await plainDevice(ns, 'eth0', '10.200.0.1/16');
      await ns.exec('ip', ['link', 'add', 'br-ov', 'type', 'bridge']);
      await ns.exec('ip', ['link', 'add', 'vx-ov', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'dev', 'eth0', 'local', '10.200.0.1']);
      await ns.exec('ip', ['link', 'set', 'vx-ov', 'master', 'br-ov']);
      await ns.exec('ip', ['link', 'set', 'br-ov', 'up']);
      await ns.exec('ip', ['link', 'set', 'vx-ov', 'up']);
      const started = now();
      await make(ns);
      out.push(now() - started);
      const final = await meshOf(ns.path, 'vx-ov');
      if (!same(final, want)) failures.push(`overlays rep ${rep + 1}: ${method} left ${setDiff(final, want)}`);
      const entries = await meshEntries(ns.path, 'vx-ov');
      if (agreed.agent !== undefined && entries !== agreed.agent) {
        failures.push(`overlays rep ${rep + 1}: the ${method} method's FDB entries differ from the agent's (${entries.slice(0, 200)} vs ${agreed.agent.slice(0, 200)})`);
      }
    });
  }
}

function overlaySection(s: OverlaySamples, nodeCount: number, reps: number, joins: number, failures: string[]): BenchSection {
  const lines = [
    `One agent (its node a network namespace, a veth eth0 as underlay) with three Links selecting every`,
    `labelled node: the underlay, a bridge and a mesh VXLAN (VNI 42) in it. ${nodeCount} Node objects (labelled,`,
    'each with an InternalIP; they exist only in the API server) are created in one burst (32 requests in',
    'flight over keep-alive connections, the addresses in the create as a kubelet registers). The witness is',
    `the kernel: the addon's \`fdb.list\` of vx-ov (one dump of one device) from the bench process, one read about`,
    `every ${POLL_MS} ms, until its all-zero entries are exactly the ${nodeCount} InternalIPs; the time is when that read`,
    `returned. Then ${joins} times: one more node joins (create → its entry) and leaves (delete → entry gone).`,
    `${reps} repetitions, each in a fresh node namespace with fresh Links and Nodes; p99 is nearest-rank (with few`,
    'samples, the maximum).',
    '',
  ];
  const title = `Overlays: ${nodeCount} nodes joining to FDB converged`;
  if (!s.fromBurstStart.length && !s.addon.length) return { title, lines: [...lines, 'Not measured: see the failures.'], failures };
  lines.push(
    row(['measure', 'samples', 'p50 (ms)', 'p99 (ms)', 'max (ms)']),
    '|---|---:|---:|---:|---:|',
    row([`the burst itself: first create sent → last create's response (${nodeCount} Nodes)`, s.burst.length, ...stats(s.burst)]),
    row([`burst start → all ${nodeCount} entries in the FDB`, s.fromBurstStart.length, ...stats(s.fromBurstStart)]),
    row([`last create's response → all ${nodeCount} entries`, s.fromLastCreate.length, ...stats(s.fromLastCreate)]),
    row(['burst start → first entry', s.firstEntry.length, ...stats(s.firstEntry)]),
    row([`one node joins a mesh of ${nodeCount}: create's response → its entry`, s.join.length, ...stats(s.join)]),
    row(['(the same from the create sent)', s.joinFromSent.length, ...stats(s.joinFromSent)]),
    row(["one node leaves: delete's response → its entry gone", s.leave.length, ...stats(s.leave)]),
    row(['(the same from the delete sent)', s.leaveFromSent.length, ...stats(s.leaveFromSent)]),
    '',
    `Each Node event reaches the agent's work queue, which runs its one overlay key at once unless it ran less than`,
    `${BATCH_DELAY_MS} ms before (then when that time is up; lib/controller/work-queue.ts): a single join or leave costs one`,
    'reconcile, and a burst is folded into a few (each lists the FDB once and adds only what is missing).',
    '',
    `The same ${nodeCount} all-zero entries (\`self permanent\`, as the agent adds them) on a VXLAN made the same way,`,
    'each method in a fresh namespace per repetition; every method must leave exactly the entries the agent',
    'left (same destinations, state and flags):',
    '',
    row(['method', 'runs', `${nodeCount} entries, p50 (ms)`, 'max (ms)', 'per entry (ms)', 'p50 / addon']),
    '|---|---:|---:|---:|---:|---:|',
  );
  const method = (name: string, xs: number[]) =>
    row([name, xs.length, xs.length ? ms(median(xs)) : '–', xs.length ? ms(Math.max(...xs)) : '–', xs.length ? ms(median(xs) / nodeCount) : '–', ratio(xs, s.addon)]);
  lines.push(
    method(`nodenet's addon, \`fdb.add\` × ${nodeCount} (the agent's kernel step)`, s.addon),
    method("the agent end to end, from the last create's response (above)", s.fromLastCreate),
    method(`one \`bridge -n NS fdb append … self permanent\` process per entry × ${nodeCount}`, s.fork),
    method(`one \`bridge -batch\` process with all ${nodeCount}`, s.batch),
  );
  return { title, lines, failures };
}

// ---------------------------------------------------------------------------------------------

/**
 * Shaping and overlay benchmarks against one throw-away control plane. `pods` defaults to
 * BENCH_SHAPING_PODS (10), `nodes` to BENCH_OVERLAY_NODES (100); BENCH_SHAPING_CHANGES (50),
 * BENCH_OVERLAY_REPS (5) and BENCH_OVERLAY_JOINS (joins and leaves per repetition, 5) tune the rest.
 */
export async function shapingOverlayBenchmarks(options: { pods?: number; nodes?: number } = {}): Promise<BenchSection[]> {
  const pods = options.pods ?? envNumber('BENCH_SHAPING_PODS', 10);
  const nodes = options.nodes ?? envNumber('BENCH_OVERLAY_NODES', 100);
  const changes = envNumber('BENCH_SHAPING_CHANGES', 50);
  const reps = envNumber('BENCH_OVERLAY_REPS', 5);
  const joins = envNumber('BENCH_OVERLAY_JOINS', 5);
  if (pods > 200) throw new Error(`at most 200 pods (one /24 of pod addresses), not ${pods}`);

  const root = new Teardowns('shaping-overlays');
  const shapingFailures: string[] = [];
  const overlayFailures: string[] = [];
  const overlay: OverlaySamples = { burst: [], fromBurstStart: [], fromLastCreate: [], firstEntry: [], join: [], joinFromSent: [], leave: [], leaveFromSent: [], addon: [], fork: [], batch: [] };
  const shaping: ShapingSamples = { fromSent: [], fromResponse: [], logFromResponse: [], kernelAhead: 0, addonChange: [], tcChange: [] };
  try {
    const cluster = await startCluster(root);
    await applyAgentRbac(cluster);
    await cluster.kubectl(['apply', '-f', join(packageRoot(), 'deploy', 'crds')]);
    await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/links.nodenet.io', 'crd/nodenetworkstatuses.nodenet.io']);

    await shapingScenario(cluster, pods, changes, shaping, shapingFailures);
    await kernelStep(changes, shaping, shapingFailures);
    for (let rep = 0; rep < reps; rep++) {
      const agreed: Record<string, string> = {};
      await overlayRep(cluster, rep, nodes, joins, overlay, overlayFailures, agreed);
      await overlayAlternatives(rep, nodes, overlay, overlayFailures, agreed);
    }
  } catch (e) {
    // The control plane or its setup: nothing after it was measured. Reported once, in the first section.
    shapingFailures.push(`shaping and overlays: ${(e as Error).message.split('\n')[0]}`);
  } finally {
    shapingFailures.push(...(await root.run()));
  }
  return [shapingSection(shaping, pods, changes, shapingFailures), overlaySection(overlay, nodes, reps, joins, overlayFailures)];
}
