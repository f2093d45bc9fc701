// resolveShapingTargets and stillValid on a real kernel. A "node" namespace and a "pod" namespace
// the way a veth CNI plus multus would leave them: eth0 (the pod IP, routed on-link through its host
// veth), net1 (a second veth with its own host peer), net2 (a macvlan on a node device, moved in)
// and net3 (a veth whose peer is in a third namespace). Each named interface gets its own host
// peer, or none with a reason; `ip -j link` witnesses every pairing. A bridge CNI's pod is found
// through the bridge. The /proc fallback is driven by a real process: a `sleep` inside the pod
// namespace, in a cgroup named like a kubelet pod's (as 60.pod-netns-cgroup does it), for a pod
// whose IP the node does not route. stillValid is true for fresh targets and false once the host
// veth is renamed or deleted, the pod interface renamed, or the /proc process gone.
//
// Everything lives in the test's namespaces and under <cgroup mount>/nodenet-test-<pid>; both are
// removed in teardown, pass or fail, and the parent test checks that nothing is left.
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import t from 'tap';

import { resolvePodInterfaces } from '../../lib/controller/shaping/pod-interfaces.js';
import { resolveShapingTargets, stillValid, type ShapingTargets, type ShapingTargetsResult } from '../../lib/controller/shaping/shaping-targets.js';
import { exited, joinCgroup, podSandboxCgroup, startSleeper, testCgroupRoot, until } from '../helpers/cgroup.js';
import { liveTestNamespaces, makeNetns, type TestNetns } from '../helpers/netns.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

interface IpLinkJson {
  ifindex: number;
  ifname: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
}

interface IpNsidJson {
  nsid: number;
  name?: string;
}

async function ipLinks(ns: TestNetns): Promise<IpLinkJson[]> {
  return JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show'])) as IpLinkJson[];
}

async function ipNsid(of: TestNetns, seenFrom: TestNetns): Promise<number | undefined> {
  const text = (await seenFrom.exec('ip', ['-j', 'netns', 'list-id'])).trim();
  const ids = text === '' ? [] : (JSON.parse(text) as IpNsidJson[]);
  return ids.find((w) => w.name === of.name)?.nsid;
}

function targetsOf(t: { fail(message: string): unknown }, result: ShapingTargetsResult, what: string): ShapingTargets | null {
  if (result.kind === 'found') return result.targets;
  t.fail(`${what}: ${result.detail}`);
  return null;
}

interface Topology {
  node: TestNetns;
  pod: TestNetns;
  other: TestNetns;
}

const POD_IP = '10.244.1.5';

async function topology(t: Teardown): Promise<Topology> {
  const node = await makeNetns(t);
  const pod = await makeNetns(t);
  const other = await makeNetns(t);
  const inNode = (...args: string[]) => node.exec('ip', args);
  const inPod = (...args: string[]) => pod.exec('ip', args);
  // eth0: the CNI's veth, the pod IP routed on-link through the host end.
  await inNode('link', 'add', 'vethp0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  await inPod('addr', 'add', `${POD_IP}/32`, 'dev', 'eth0');
  await inPod('link', 'set', 'eth0', 'up');
  await inNode('link', 'set', 'vethp0', 'up');
  await inNode('route', 'add', POD_IP, 'dev', 'vethp0');
  // net1: a second attachment's veth, with its own host end.
  await inNode('link', 'add', 'vethp1', 'type', 'veth', 'peer', 'name', 'net1', 'netns', pod.name);
  await inPod('addr', 'add', '10.245.0.5/32', 'dev', 'net1');
  // net2: a macvlan on a node device, moved into the pod (as the macvlan CNI does). Left down so it
  // can be renamed later.
  await inNode('link', 'add', 'lower0', 'type', 'veth', 'peer', 'name', 'lower1');
  await inNode('link', 'add', 'mv0', 'link', 'lower0', 'type', 'macvlan', 'mode', 'bridge');
  await inNode('link', 'set', 'mv0', 'netns', pod.name);
  await inPod('link', 'set', 'mv0', 'name', 'net2');
  // net3: a veth whose peer is in some third namespace, not the node's.
  await inPod('link', 'add', 'net3', 'type', 'veth', 'peer', 'name', 'elsewhere0', 'netns', other.name);
  return { node, pod, other };
}

t.test('each pod interface gets its own host peer, or none with a reason', async (t) => {
  const { node, pod } = await topology(t);
  const podId = await ipNsid(pod, node);
  t.type(podId, 'number', 'ip netns list-id: the pod namespace has an id in the node namespace');
  const nodeLinks = await ipLinks(node);
  const podLinks = await ipLinks(pod);
  const byName = (list: IpLinkJson[], name: string) => list.find((l) => l.ifname === name)!;
  const opts = { netns: node.path, useProc: false };
  const podRef = { ip: POD_IP, uid: randomUUID() };

  for (const [name, host] of [['eth0', 'vethp0'], ['net1', 'vethp1']] as const) {
    const targets = targetsOf(t, await resolveShapingTargets(podRef, name, opts), name);
    if (!targets) continue;
    const inPod = byName(podLinks, name);
    const inNode = byName(nodeLinks, host);
    t.equal(targets.via, 'route', `${name}: the namespace was found from the pod IP's route`);
    t.equal(targets.netnsPath, pod.path, `${name}: the pod's namespace file`);
    t.equal(targets.podNetnsId, podId, `${name}: the pod namespace's id in the node`);
    t.same(targets.podDevice, { index: inPod.ifindex, name, kind: 'veth' }, `${name}: in the pod`);
    t.same(targets.hostDevice, { index: inNode.ifindex, name: host }, `${name}: its own host peer ${host}`);
    t.equal(targets.hostDetail, null);
    // The witness: ip -j link in the node names the pod device as this veth's peer.
    t.equal(inNode.link_index, inPod.ifindex, `ip -j link: ${host}'s peer index is ${name}'s`);
    t.equal(inNode.link_netnsid, podId, `ip -j link: ${host}'s peer is in the pod namespace`);
  }
  // The default interface agrees with what the pod-IP resolver found.
  const viaIP = await resolvePodInterfaces(POD_IP, { netns: node.path });
  const eth0 = await resolveShapingTargets(podRef, 'eth0', opts);
  t.same(eth0.kind === 'found' && viaIP.kind === 'found' ? [eth0.targets.hostDevice, eth0.targets.podDevice.index] : null, viaIP.kind === 'found' ? [viaIP.hostInterface, viaIP.podInterface.index] : 'not found', 'eth0 matches resolvePodInterfaces');

  const net2 = targetsOf(t, await resolveShapingTargets(podRef, 'net2', opts), 'net2');
  if (net2) {
    t.equal(net2.podDevice.kind, 'macvlan', 'net2 is a macvlan');
    t.equal(byName(podLinks, 'net2').linkinfo?.info_kind, 'macvlan', 'ip -d -j link agrees');
    t.equal(net2.hostDevice, null, 'a macvlan has no host peer');
    t.match(net2.hostDetail, /net2 is a macvlan device on a lower device \(index \d+\) with no peer in the node namespace/);
  }
  const net3 = targetsOf(t, await resolveShapingTargets(podRef, 'net3', opts), 'net3');
  if (net3) {
    t.equal(net3.hostDevice, null, 'a veth into a third namespace has no peer in the node');
    t.match(net3.hostDetail, /net3 is a veth whose peer .* is in a namespace other than the node's/);
  }

  const missing = await resolveShapingTargets(podRef, 'net9', opts);
  t.equal(missing.kind, 'not-found');
  if (missing.kind === 'not-found') {
    const listed = /has no interface net9; it has (.*)$/.exec(missing.detail)?.[1]?.split(', ');
    t.same(listed?.sort(), podLinks.map((l) => l.ifname).sort(), `the pod namespace's interfaces are listed: ${missing.detail}`);
  }

  // With no IP and the /proc fallback off there is nothing to go on.
  t.match(await resolveShapingTargets({ ip: null, uid: podRef.uid }, 'eth0', opts), { kind: 'not-found', detail: /no IP.*fallback is off/ });
  t.match(await resolveShapingTargets({ ip: '10.99.0.1', uid: podRef.uid }, 'eth0', opts), { kind: 'not-found', detail: /10\.99\.0\.1: no route/ });
});

t.test('a bridge CNI pod: the namespace from the bridge port, the host device is that port', async (t) => {
  const node = await makeNetns(t);
  const pod = await makeNetns(t);
  await node.exec('ip', ['link', 'add', 'cni0', 'type', 'bridge']);
  await node.exec('ip', ['addr', 'add', '10.244.2.1/24', 'dev', 'cni0']);
  await node.exec('ip', ['link', 'set', 'cni0', 'up']);
  await node.exec('ip', ['link', 'add', 'veth0b5a', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
  await node.exec('ip', ['link', 'set', 'veth0b5a', 'master', 'cni0', 'up']);
  await pod.exec('ip', ['addr', 'add', '10.244.2.5/24', 'dev', 'eth0']);
  await pod.exec('ip', ['link', 'set', 'eth0', 'up']);

  const targets = targetsOf(t, await resolveShapingTargets({ ip: '10.244.2.5', uid: randomUUID() }, 'eth0', { netns: node.path, useProc: false }), 'bridge pod');
  if (!targets) return;
  const port = (await ipLinks(node)).find((l) => l.ifname === 'veth0b5a')!;
  t.equal(targets.via, 'bridge');
  t.equal(targets.netnsPath, pod.path);
  t.same(targets.hostDevice, { index: port.ifindex, name: 'veth0b5a' }, 'the bridge port, not the bridge');
  t.equal(targets.podDevice.index, port.link_index, 'ip -j link: the port\'s peer is the pod device');
  t.equal(await stillValid(targets, { netns: node.path }), true);
});

t.test('stillValid follows renames and deletions', async (t) => {
  const { node, pod } = await topology(t);
  const opts = { netns: node.path, useProc: false };
  const podRef = { ip: POD_IP, uid: randomUUID() };
  const resolve = async (name: string) => {
    const r = await resolveShapingTargets(podRef, name, opts);
    if (r.kind !== 'found') throw new Error(`${name}: ${r.detail}`);
    return r.targets;
  };
  const eth0 = await resolve('eth0');
  const net1 = await resolve('net1');
  const net2 = await resolve('net2');
  const valid = (x: ShapingTargets) => stillValid(x, { netns: node.path });
  t.same([await valid(eth0), await valid(net1), await valid(net2)], [true, true, true], 'fresh targets are valid');

  await node.exec('ip', ['link', 'set', 'vethp1', 'name', 'vethq1']);
  t.equal(await valid(net1), false, 'the host veth renamed');
  t.equal(await valid(eth0), true, 'the other interface is untouched');

  await pod.exec('ip', ['link', 'set', 'net2', 'name', 'net7']);
  t.equal(await valid(net2), false, 'the pod interface renamed');

  const net1Again = await resolve('net1');
  t.equal(net1Again.hostDevice?.name, 'vethq1', 're-resolved after the rename');
  t.equal(await valid(net1Again), true, 'and valid');

  await node.exec('ip', ['link', 'del', 'vethp0']);
  t.equal(await valid(eth0), false, 'the host veth deleted');

  await pod.exec('ip', ['link', 'del', 'net1']);
  t.equal(await valid(net1Again), false, 'the pod interface deleted');
  t.equal(await stillValid({ ...net2, netnsPath: join(pod.path, 'nope') }), false, 'a namespace path that does not open');
});

// ---------------------------------------------------------------------------------------------
// The /proc fallback: a real process in a pod cgroup.

/** A `sleep` inside `ns`, in the cgroup `cgroup`. */
async function podProcess(t: Teardown, ns: TestNetns, cgroup: string): Promise<ChildProcess> {
  const child = startSleeper(t, ns);
  await joinCgroup(cgroup, child.pid!);
  const want = (await stat(ns.path)).ino;
  await until('the sleeper to be in the pod namespace', async () => (await stat(`/proc/${child.pid}/ns/net`).catch(() => ({ ino: 0 }))).ino === want);
  return child;
}

t.test('the /proc fallback finds a pod the node does not route to', async (t) => {
  let base = '';
  const namespacesBefore = liveTestNamespaces();
  let sleeperPid = 0;

  await t.test('scenario', async (t) => {
    base = (await testCgroupRoot(t)).base;
    const { node, pod } = await topology(t);
    const uid = randomUUID();
    const cgroup = podSandboxCgroup(base, uid);
    await mkdir(cgroup, { recursive: true });
    const sleeper = await podProcess(t, pod, cgroup);
    sleeperPid = sleeper.pid!;

    // The pod IP is not routed in the node (an IP the CNI has not routed yet, or one routed by a
    // CNI the route path does not understand); the pod's process still leads to its namespace.
    const unrouted = { ip: '10.99.0.5', uid };
    const result = await resolveShapingTargets(unrouted, 'eth0', { netns: node.path });
    const targets = targetsOf(t, result, '/proc fallback');
    if (!targets) return;
    const podId = await ipNsid(pod, node);
    const nodeLinks = await ipLinks(node);
    const podLinks = await ipLinks(pod);
    t.equal(targets.via, 'proc');
    t.equal(targets.netnsPath, `/proc/${sleeper.pid}/ns/net`, 'the pod process\'s namespace path');
    const file = await stat(pod.path);
    t.same(targets.netnsIdentity, { dev: file.dev, ino: file.ino }, 'which is the pod namespace (stat -L of its file)');
    t.equal(targets.podNetnsId, podId, 'its id in the node, as ip netns list-id gives it');
    t.same(targets.podDevice, { index: podLinks.find((l) => l.ifname === 'eth0')!.ifindex, name: 'eth0', kind: 'veth' });
    t.same(targets.hostDevice, { index: nodeLinks.find((l) => l.ifname === 'vethp0')!.ifindex, name: 'vethp0' }, 'the host peer is found through the namespace id');
    // No IP at all: the same.
    t.match(await resolveShapingTargets({ ip: null, uid }, 'net1', { netns: node.path }), { kind: 'found', targets: { via: 'proc', hostDevice: { name: 'vethp1' } } });
    t.match(await resolveShapingTargets(unrouted, 'eth0', { netns: node.path, useProc: false }), { kind: 'not-found' }, 'with the fallback off, not found');

    // A pod namespace with no id in the node's (nothing joins it to the node): no veth peer there.
    const lone = await makeNetns(t);
    await lone.exec('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    const loneUid = randomUUID();
    const loneCgroup = podSandboxCgroup(base, loneUid);
    await mkdir(loneCgroup, { recursive: true });
    await podProcess(t, lone, loneCgroup);
    t.equal(await ipNsid(lone, node), undefined, 'ip netns list-id: no id for it in the node');
    t.match(await resolveShapingTargets({ ip: null, uid: loneUid }, 'eth0', { netns: node.path }), {
      kind: 'found',
      targets: { via: 'proc', podNetnsId: null, hostDevice: null, hostDetail: /eth0 is a veth whose peer is in the pod's namespace too/ },
    });

    // A pod with no process at all.
    t.match(await resolveShapingTargets({ ip: null, uid: randomUUID() }, 'eth0', { netns: node.path }), { kind: 'not-found', detail: /no live process of pod/ });

    // stillValid: true while the process lives; its path is gone once it has exited.
    t.equal(await stillValid(targets, { netns: node.path }), true, 'valid while the pod process lives');
    sleeper.kill('SIGKILL');
    await exited(sleeper);
    t.equal(await stillValid(targets, { netns: node.path }), false, 'not valid once the process is gone');
  });

  t.notOk(existsSync(base), `${base} removed`);
  t.notOk(sleeperPid !== 0 && existsSync(`/proc/${sleeperPid}/ns/net`) && (await readFile(`/proc/${sleeperPid}/comm`, 'utf8').catch(() => '')).trim() === 'sleep', 'the pod process is gone');
  t.same(liveTestNamespaces(), namespacesBefore, 'the test namespaces removed');
});
