// Shaping by pod annotation on a real API server: the agent (as its ServiceAccount) follows a Pod
// bound to its node whose "sandbox" is a network namespace joined to the node namespace by a veth,
// the way a veth CNI makes one. tc is the witness of what lands on the pod's eth0 (egress) and on
// the host-side veth (ingress); Events are read back from the API server.
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import t from 'tap';

import { applyAgentRbac, lockFileFor, runNodenet, sandboxNode, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture, type KubeFixture } from '../helpers/kube.js';
import type { TestNetns } from '../helpers/netns.js';
import { podSandbox } from '../helpers/shaping.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);

interface TcQdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst?: number; delay?: number };
}

async function rootQdisc(ns: TestNetns, dev: string): Promise<TcQdisc | undefined> {
  const all = JSON.parse(await ns.exec('tc', ['-j', 'qdisc', 'show', 'dev', dev])) as TcQdisc[];
  return all.find((q) => q.root);
}

/** Waits until the root qdisc of `dev` satisfies `ok`, and returns it. */
async function rootBecomes(ns: TestNetns, dev: string, ok: (q: TcQdisc | undefined) => boolean, what: string): Promise<TcQdisc | undefined> {
  return eventually(async () => {
    const q = await rootQdisc(ns, dev);
    if (!ok(q)) throw new Error(`${dev}: waiting for ${what}; root is ${JSON.stringify(q)}`);
    return q;
  }, 20_000);
}

const tbfAt = (bytesPerSecond: number) => (q: TcQdisc | undefined) => q?.kind === 'tbf' && q.handle === '6e6e:' && q.options?.rate === bytesPerSecond;
const kernelDefault = (q: TcQdisc | undefined) => q?.kind === 'noqueue' && q.handle === '0:';

async function podEvents(k: KubeFixture, pod: string): Promise<CoreV1Event[]> {
  const list = await k.core.listNamespacedEvent({ namespace: k.namespace, fieldSelector: `involvedObject.name=${pod}` });
  return list.items;
}

async function eventWith(k: KubeFixture, pod: string, reason: string, message: RegExp | string = /./): Promise<CoreV1Event> {
  return eventually(async () => {
    const events = await podEvents(k, pod);
    const hit = events.find((e) => e.reason === reason && (typeof message === 'string' ? (e.message ?? '').includes(message) : message.test(e.message ?? '')));
    if (!hit) throw new Error(`no ${reason} Event on ${pod} matching ${String(message)}: ${events.map((e) => `${e.reason}: ${e.message}`).join(' | ')}`);
    return hit;
  }, 20_000);
}

async function annotate(k: KubeFixture, pod: string, annotations: Record<string, string | null>): Promise<V1Pod> {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  return k.core.patchNamespacedPod({ name: pod, namespace: k.namespace, body: { metadata: { annotations } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

async function createAnnotatedPod(k: KubeFixture, name: string, nodeName: string, ip: string, annotations: Record<string, string>, extra: { hostNetwork?: boolean } = {}): Promise<V1Pod> {
  await k.createPod({ name, nodeName, podIPs: [ip], ...extra });
  return annotate(k, name, annotations);
}

async function labelNamespace(k: KubeFixture, labels: Record<string, string | null>): Promise<void> {
  const { PatchStrategy, setHeaderOptions } = await import('@kubernetes/client-node');
  await k.core.patchNamespace({ name: k.namespace, body: { metadata: { labels } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

t.test('bandwidth annotations: applied, edited, a bad edit keeps the last good shaping, expiry lifts it', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const box = await podSandbox(t, node.netns, '10.244.1.21');
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name } });
  await agent.ready();

  await createAnnotatedPod(k, 'capped', node.name, box.ip, { 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '20M' });
  await rootBecomes(box.pod, 'eth0', tbfAt(1_250_000), 'egress tbf at 10 Mbit/s inside the pod');
  await rootBecomes(node.netns, box.hostVeth, tbfAt(2_500_000), 'ingress tbf at 20 Mbit/s on the host veth');
  const shaped = await eventWith(k, 'capped', 'Shaped');
  t.equal(shaped.type, 'Normal');
  t.match(shaped.message, /egress on eth0 in the pod: tbf rate 10Mbit/);
  t.match(shaped.message, new RegExp(`ingress on ${box.hostVeth} on the node: tbf rate 20Mbit`));
  t.equal(await agent.metric('nodenet_shaping_pods', { direction: 'egress' }), 1, 'metric: one pod shaped on egress');
  t.equal(await agent.metric('nodenet_shaping_pods', { direction: 'ingress' }), 1, 'and on ingress');

  await annotate(k, 'capped', { 'kubernetes.io/egress-bandwidth': '5M' });
  await rootBecomes(box.pod, 'eth0', tbfAt(625_000), 'the edited 5 Mbit/s');
  t.match(await rootQdisc(node.netns, box.hostVeth), { options: { rate: 2_500_000 } }, 'ingress untouched by an egress edit');

  await annotate(k, 'capped', { 'kubernetes.io/egress-bandwidth': '5Mbps' });
  const bad = await eventWith(k, 'capped', 'InvalidBandwidth');
  t.equal(bad.type, 'Warning');
  t.match(bad.message, /"5Mbps"/, 'the Event quotes the bad value');
  t.match(bad.message, /stays as it was/, 'and says the shaping is kept');
  t.ok(tbfAt(625_000)(await rootQdisc(box.pod, 'eth0')), 'the last good egress cap stays in the kernel');
  t.ok((await agent.metric('nodenet_shaping_failures_total', { reason: 'invalid-annotation' })) >= 1, 'counted');

  await annotate(k, 'capped', { 'kubernetes.io/egress-bandwidth': '5M', 'nodenet.io/shaping-expires': '3s' });
  await rootBecomes(box.pod, 'eth0', kernelDefault, 'the kernel default after expiry');
  await rootBecomes(node.netns, box.hostVeth, kernelDefault, 'the kernel default on the host veth too');
  await eventWith(k, 'capped', 'ShapingExpired');
  await eventWith(k, 'capped', 'ShapingRemoved');
  t.equal(await agent.metric('nodenet_shaping_pods', { direction: 'egress' }), 0);
});

t.test('netem: only behind the namespace label, and a kernel without sch_netem is named with nothing changed', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const box = await podSandbox(t, node.netns, '10.244.1.22');
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name } });
  await agent.ready();

  await createAnnotatedPod(k, 'slow', node.name, box.ip, { 'nodenet.io/egress-netem': 'delay 50ms 5ms', 'kubernetes.io/ingress-bandwidth': '10M' });
  const gated = await eventWith(k, 'slow', 'NetemNotEnabled');
  t.match(gated.message, /nodenet\.io\/shaping=enabled/);
  // The cap needs no label and is applied on its own.
  await rootBecomes(node.netns, box.hostVeth, tbfAt(1_250_000), 'the ingress cap');
  t.ok(kernelDefault(await rootQdisc(box.pod, 'eth0')), 'no netem behind a closed gate');

  await labelNamespace(k, { 'nodenet.io/shaping': 'enabled' });
  const failed = await eventWith(k, 'slow', 'ShapingFailed');
  t.equal(failed.type, 'Warning');
  t.match(failed.message, /netem is not available in this kernel \(load the sch_netem module\)/, 'names the missing module');
  t.match(failed.message, /egress shaping \(netem delay 50ms 5ms\) on eth0 in the pod failed/, 'the operation and the object');
  t.ok(kernelDefault(await rootQdisc(box.pod, 'eth0')), 'eth0 unchanged');
  t.ok(tbfAt(1_250_000)(await rootQdisc(node.netns, box.hostVeth)), 'the ingress cap unchanged');
  t.ok((await agent.metric('nodenet_shaping_failures_total', { reason: 'kernel-error' })) >= 1);
  const ready = await agent.get('/readyz');
  t.equal(ready.status, 200, 'one pod the kernel cannot shape does not make the agent unready');
});

t.test('deleting the Pod object removes nodenet\'s qdisc from the veth while it still exists', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const box = await podSandbox(t, node.netns, '10.244.1.23');
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name } });
  await agent.ready();
  await createAnnotatedPod(k, 'gone', node.name, box.ip, { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '10M' });
  await rootBecomes(node.netns, box.hostVeth, tbfAt(1_250_000), 'the ingress cap');
  await rootBecomes(box.pod, 'eth0', tbfAt(1_250_000), 'the egress cap');

  await k.core.deleteNamespacedPod({ name: 'gone', namespace: k.namespace, gracePeriodSeconds: 0 });
  await rootBecomes(node.netns, box.hostVeth, kernelDefault, 'the kernel default on the live host veth');
  await rootBecomes(box.pod, 'eth0', kernelDefault, 'and on eth0');
  t.match(await node.netns.exec('ip', ['-j', 'link', 'show', box.hostVeth]), box.hostVeth, 'the veth itself is still there');
});

t.test('a restarted agent adopts what it placed and removes what no pod wants any more', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const kept = await podSandbox(t, node.netns, '10.244.1.24');
  const dropped = await podSandbox(t, node.netns, '10.244.1.25');
  const lockFile = lockFileFor(t);
  const env = { NODE_NAME: node.name };
  const first = await startAgent(t, { cluster, netns: node.netns, lockFile, env });
  await first.ready();
  const caps = { 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '10M', 'nodenet.io/shaping-expires': '1h' };
  const keptPod = await createAnnotatedPod(k, 'kept', node.name, kept.ip, caps);
  const droppedPod = await createAnnotatedPod(k, 'dropped', node.name, dropped.ip, caps);
  for (const box of [kept, dropped]) {
    await rootBecomes(box.pod, 'eth0', tbfAt(1_250_000), 'egress cap');
    await rootBecomes(node.netns, box.hostVeth, tbfAt(1_250_000), 'ingress cap');
  }
  t.same(await first.stop('SIGTERM'), { code: 0, signal: null });
  t.ok(tbfAt(1_250_000)(await rootQdisc(kept.pod, 'eth0')), 'stopping leaves the qdiscs in place');

  await k.core.deleteNamespacedPod({ name: 'dropped', namespace: k.namespace, gracePeriodSeconds: 0 });
  const second = await startAgent(t, { cluster, netns: node.netns, lockFile, env });
  await second.ready();
  await rootBecomes(dropped.pod, 'eth0', kernelDefault, "the deleted pod's egress cap removed by the new agent");
  await rootBecomes(node.netns, dropped.hostVeth, kernelDefault, 'and its ingress cap');
  t.ok(tbfAt(1_250_000)(await rootQdisc(kept.pod, 'eth0')), "the live pod's caps stay");
  t.ok(tbfAt(1_250_000)(await rootQdisc(node.netns, kept.hostVeth)));
  t.equal(await second.metric('nodenet_shaping_changes_total', { action: 'installed' }), 0, 'adopted: nothing re-installed');
  t.equal(await second.metric('nodenet_shaping_changes_total', { action: 'changed' }), 0, 'nor changed');
  t.equal(await second.metric('nodenet_shaping_changes_total', { action: 'removed' }), 2, 'only the two orphans removed');
  const state = JSON.parse((await import('node:fs')).readFileSync(lockFile.replace(/nodenet\.lock$/, 'shaping.json'), 'utf8')) as { appliedAt: Record<string, string> };
  t.same(Object.keys(state.appliedAt), [keptPod.metadata!.uid], 'the state file holds when the live pod was shaped, and forgot the deleted one');
  t.not(droppedPod.metadata!.uid, keptPod.metadata!.uid);
});

t.test('a re-created sandbox (a new veth under the same pod) is shaped again without any pod change', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const box = await podSandbox(t, node.netns, '10.244.1.26');
  // A long resync: only the link notification can bring the agent back to this pod in time.
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name, RESYNC_PERIOD: '10m' } });
  await agent.ready();
  await createAnnotatedPod(k, 'reborn', node.name, box.ip, { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '10M' });
  await rootBecomes(node.netns, box.hostVeth, tbfAt(1_250_000), 'the first sandbox shaped');

  await node.netns.exec('ip', ['link', 'del', box.hostVeth]);
  const again = await podSandbox(t, node.netns, box.ip, box.pod);
  t.not(again.hostVeth, box.hostVeth);
  await rootBecomes(node.netns, again.hostVeth, tbfAt(1_250_000), 'the new host veth shaped');
  await rootBecomes(again.pod, 'eth0', tbfAt(1_250_000), "the new sandbox's eth0 shaped");
});

t.test("someone else's qdiscs: a foreign root is reported and kept; the CNI bandwidth plugin's caps are deferred to", async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const foreign = await podSandbox(t, node.netns, '10.244.1.27');
  const plugin = await podSandbox(t, node.netns, '10.244.1.28');
  await node.netns.exec('tc', ['qdisc', 'add', 'dev', foreign.hostVeth, 'root', 'handle', '1:', 'pfifo', 'limit', '100']);
  // What the bandwidth plugin leaves: tbf 1: at the host veth's root (ingress), an ingress qdisc
  // on it redirecting to its bwp… ifb (egress).
  await node.netns.exec('tc', ['qdisc', 'add', 'dev', plugin.hostVeth, 'root', 'handle', '1:', 'tbf', 'rate', '5mbit', 'burst', '32k', 'latency', '25ms']);
  await node.netns.exec('tc', ['qdisc', 'add', 'dev', plugin.hostVeth, 'handle', 'ffff:', 'ingress']);
  await node.netns.exec('ip', ['link', 'add', 'bwp0123abcd', 'type', 'ifb']);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name } });
  await agent.ready();

  await createAnnotatedPod(k, 'foreign', node.name, foreign.ip, { 'kubernetes.io/ingress-bandwidth': '10M' });
  const reported = await eventWith(k, 'foreign', 'ForeignQdisc');
  t.match(reported.message, new RegExp(`${foreign.hostVeth} on the node already has a pfifo qdisc \\(handle 1:\\) that nodenet does not own`));
  t.match(await rootQdisc(node.netns, foreign.hostVeth), { kind: 'pfifo', handle: '1:' }, 'left as it was');

  await createAnnotatedPod(k, 'plugin', node.name, plugin.ip, { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '10M' });
  const ingress = await eventWith(k, 'plugin', 'BandwidthByCNI', 'kubernetes.io/ingress-bandwidth');
  t.equal(ingress.type, 'Normal');
  await eventWith(k, 'plugin', 'BandwidthByCNI', 'kubernetes.io/egress-bandwidth');
  t.match(await rootQdisc(node.netns, plugin.hostVeth), { kind: 'tbf', handle: '1:', options: { rate: 625_000 } }, "the plugin's tbf untouched");
  t.ok(kernelDefault(await rootQdisc(plugin.pod, 'eth0')), 'no second egress cap inside the pod');
  t.equal(await agent.metric('nodenet_shaping_deferred_pods'), 1);
});

t.test('a host-network pod is refused with an Event', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const agent = await startAgent(t, { cluster, netns: node.netns, env: { NODE_NAME: node.name } });
  await agent.ready();
  await createAnnotatedPod(k, 'hostnet', node.name, '192.0.2.11', { 'kubernetes.io/egress-bandwidth': '10M' }, { hostNetwork: true });
  const refused = await eventWith(k, 'hostnet', 'HostNetwork');
  t.equal(refused.type, 'Warning');
  t.match(refused.message, /shaping it would shape the node/);
});

t.test('nodenet cleanup removes the qdiscs nodenet placed, and nothing else', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await sandboxNode(t, k);
  const shaped = await podSandbox(t, node.netns, '10.244.1.29');
  const other = await podSandbox(t, node.netns, '10.244.1.30');
  await other.pod.exec('tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'tbf', 'rate', '5mbit', 'burst', '32k', 'latency', '25ms']);
  const lockFile = lockFileFor(t);
  const agent = await startAgent(t, { cluster, netns: node.netns, lockFile, env: { NODE_NAME: node.name } });
  await agent.ready();
  await createAnnotatedPod(k, 'shaped', node.name, shaped.ip, { 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '10M' });
  await rootBecomes(shaped.pod, 'eth0', tbfAt(1_250_000), 'egress cap');
  await rootBecomes(node.netns, shaped.hostVeth, tbfAt(1_250_000), 'ingress cap');
  await agent.stop('SIGTERM');

  const cleanup = await runNodenet(['cleanup', '--netns', node.netns.path], { NODENET_LOCK_FILE: lockFile });
  t.equal(cleanup.code, 0, cleanup.stderr);
  t.match(cleanup.stdout, new RegExp(`^qdiscs shaping:\n  removed tbf 6e6e: from ${shaped.hostVeth}\n  removed tbf 6e6e: from eth0 in ${shaped.pod.path}\n`, 'm'));
  t.ok(kernelDefault(await rootQdisc(shaped.pod, 'eth0')), 'the pod eth0 has the kernel default again');
  t.ok(kernelDefault(await rootQdisc(node.netns, shaped.hostVeth)), 'and so has the host veth');
  t.match(await rootQdisc(other.pod, 'eth0'), { kind: 'tbf', handle: '1:' }, "someone else's tbf stays");
  const again = await runNodenet(['cleanup', '--netns', node.netns.path], { NODENET_LOCK_FILE: lockFile });
  t.equal(again.stdout, "nothing of nodenet's was left\n");
});
