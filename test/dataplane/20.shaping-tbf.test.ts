// Bandwidth caps by annotation, measured: iperf3 between a pod namespace and its node namespace
// through the shaping reconcile (annotation → model → resolver → qdisc). The measured rate lies
// between 0.5× and 1.1× the cap and tbf's overlimit counter rises; an edit moves the rate; lifting
// the cap gives back the veth's full speed. Egress is measured pod → node (tbf on the pod's eth0),
// ingress node → pod (tbf on the host-side veth).
import { spawn } from 'node:child_process';

import t from 'tap';

import { qdiscs } from '../../lib/kernel/index.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { nodeAddress, podSandbox, podShaper, type PodSandbox } from '../helpers/shaping.js';

let port = 5201 + (process.pid % 500) * 2;

/** One iperf3 client run against a one-shot server: the Mbit/s received, or why there is none. */
async function iperfOnce(to: TestNetns, from: TestNetns, address: string, seconds: number): Promise<{ mbit: number } | { failure: string }> {
  const p = port++;
  const server = spawn('ip', ['netns', 'exec', to.name, 'iperf3', '-s', '-1', '-p', String(p), '-B', address], { stdio: 'ignore' });
  try {
    // iperf3 -s has no "ready" signal; the client retries while the connection is refused.
    for (let attempt = 0; ; attempt++) {
      const result = await runAllowingFailure('ip', ['netns', 'exec', from.name, 'iperf3', '-c', address, '-p', String(p), '-t', String(seconds + 1), '-O', '1', '-J']);
      let parsed: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
      try {
        parsed = JSON.parse(result.stdout) as typeof parsed;
      } catch {
        return { failure: `iperf3 exited ${result.code} without JSON: ${result.stderr.trim()}` };
      }
      const received = parsed.end?.sum_received?.bits_per_second;
      if (result.code === 0 && parsed.error === undefined && typeof received === 'number') return { mbit: received / 1e6 };
      const failure = parsed.error ?? `exit ${result.code} with no receive summary`;
      if (attempt >= 30 || !/Connection refused|unable to connect/i.test(failure)) return { failure };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    server.kill('SIGKILL');
  }
}

/** Mbit/s received over `seconds` (the first second left out), client in `from`, server in `to`. */
async function iperf(to: TestNetns, from: TestNetns, address: string, seconds = 3): Promise<number> {
  // iperf3 reports a failed measurement as JSON `error`, at times with exit status 0; such a run is
  // repeated against a fresh server (the one-shot server of the failed run has exited).
  const failures: string[] = [];
  while (failures.length < 3) {
    const outcome = await iperfOnce(to, from, address, seconds);
    if ('mbit' in outcome) return outcome.mbit;
    failures.push(outcome.failure);
  }
  throw new Error(`iperf3 from ${from.name} to ${address} failed 3 times: ${failures.join('; ')}`);
}

async function overlimits(ns: TestNetns, device: string): Promise<number> {
  const [root] = (await qdiscs.list({ netns: ns.path, device })).filter((q) => q.parent === 'root');
  return root?.stats?.overlimits ?? 0;
}

async function setup(t: Parameters<typeof makeNetns>[0]): Promise<{ node: TestNetns; box: PodSandbox; nodeIP: string }> {
  const node = await makeNetns(t);
  const box = await podSandbox(t, node, '10.244.1.40');
  const nodeIP = await nodeAddress(node, box);
  return { node, box, nodeIP };
}

function within(t: { ok(value: boolean, message: string): unknown }, measured: number, capMbit: number, what: string): void {
  t.ok(measured <= 1.1 * capMbit && measured >= 0.5 * capMbit, `${what}: ${measured.toFixed(2)} Mbit/s within [0.5, 1.1] × ${capMbit} Mbit/s`);
}

t.test('egress: the cap holds, an edit moves it, removal restores full speed', async (t) => {
  const { node, box, nodeIP } = await setup(t);
  const shaper = podShaper(node);
  const free = await iperf(node, box.pod, nodeIP);
  t.ok(free > 200, `unshaped veth: ${free.toFixed(0)} Mbit/s`);

  const events = await shaper.apply(box, { 'kubernetes.io/egress-bandwidth': '20M' });
  t.match(events, [{ type: 'Normal', reason: 'Shaped' }]);
  const before = await overlimits(box.pod, 'eth0');
  within(t, await iperf(node, box.pod, nodeIP), 20, 'capped at 20M');
  t.ok((await overlimits(box.pod, 'eth0')) > before, 'tbf overlimits rose during the transfer');

  await shaper.apply(box, { 'kubernetes.io/egress-bandwidth': '8M' });
  within(t, await iperf(node, box.pod, nodeIP), 8, 'edited to 8M');

  const removed = await shaper.apply(box, {});
  t.match(removed, [{ type: 'Normal', reason: 'ShapingRemoved' }]);
  const after = await iperf(node, box.pod, nodeIP);
  t.ok(after > 5 * 20, `cap lifted: ${after.toFixed(0)} Mbit/s (free ran at ${free.toFixed(0)})`);
});

t.test('ingress: the cap on the host-side veth holds, and goes with the pod', async (t) => {
  const { node, box } = await setup(t);
  const shaper = podShaper(node);
  await shaper.apply(box, { 'kubernetes.io/ingress-bandwidth': '12M' });
  const before = await overlimits(node, box.hostVeth);
  // Server in the pod, client on the node: the pod receives through the host veth's tbf.
  within(t, await iperf(box.pod, node, box.ip), 12, 'capped at 12M towards the pod');
  t.ok((await overlimits(node, box.hostVeth)) > before, 'tbf overlimits rose on the host veth');

  await shaper.remove(box);
  const after = await iperf(box.pod, node, box.ip);
  t.ok(after > 5 * 12, `pod deleted, cap gone: ${after.toFixed(0)} Mbit/s`);
});
