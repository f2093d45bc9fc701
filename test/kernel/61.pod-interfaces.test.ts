// The primary path of the pod → interfaces resolver on a real kernel: a "node" namespace and a
// "pod" namespace joined by a veth the way a veth CNI joins them (eth0 in the pod, the host end in
// the node, the pod IP routed on-link through the host end). resolvePodInterfaces, run against the
// node namespace, finds the host-side veth and the pod's /var/run/netns file through the route, the
// veth's link-netnsid and RTM_GETNSID. routes.get is checked against `ip -j route get` and
// routes.netnsId against `ip netns list-id`, and reading an id is shown not to assign one.
//
// Every address and route exists only inside the test namespaces; both are removed in teardown.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { resolvePodInterfaces } from '../../lib/controller/shaping/pod-interfaces.js';
import { isKernelError, links, routes } from '../../lib/kernel/index.js';
import { tableName } from '../../lib/kernel/routes.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

interface IpRouteGetJson {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  prefsrc?: string;
  table?: string;
}

interface IpNsidJson {
  nsid: number;
  name?: string;
}

async function ipRouteGet(ns: TestNetns, address: string): Promise<IpRouteGetJson> {
  const out = JSON.parse(await ns.exec('ip', ['-j', 'route', 'get', address])) as IpRouteGetJson[];
  if (out.length !== 1) throw new Error(`ip route get ${address} printed ${out.length} routes`);
  return out[0]!;
}

async function ipNsids(ns: TestNetns): Promise<IpNsidJson[]> {
  const text = (await ns.exec('ip', ['-j', 'netns', 'list-id'])).trim();
  return text === '' ? [] : (JSON.parse(text) as IpNsidJson[]);
}

interface Topology {
  node: TestNetns;
  pod: TestNetns;
  hostVeth: string;
}

// A CNI's veth pod: the host end created in the node namespace with its peer straight in the pod
// namespace, which is when the kernel gives the pod namespace an id in the node's.
async function podTopology(t: Parameters<typeof makeNetns>[0]): Promise<Topology> {
  const node = await makeNetns(t);
  const pod = await makeNetns(t);
  const hostVeth = 'veth5a1b2c';
  const inNode = (...args: string[]) => node.exec('ip', args);
  const inPod = (...args: string[]) => pod.exec('ip', args);
  await inNode('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  await inPod('addr', 'add', '10.244.1.5/32', 'dev', 'eth0');
  await inPod('-6', 'addr', 'add', 'fd00:10:244:1::5/128', 'dev', 'eth0', 'nodad');
  await inPod('link', 'set', 'eth0', 'up');
  await inNode('link', 'set', hostVeth, 'up');
  await inNode('route', 'add', '10.244.1.5', 'dev', hostVeth);
  await inNode('-6', 'route', 'add', 'fd00:10:244:1::5', 'dev', hostVeth);
  // Another node's pods through a gateway, an address routed out of a bridge "uplink", and a veth
  // whose both ends stay in the node namespace.
  await inNode('link', 'add', 'uplink0', 'type', 'bridge');
  await inNode('addr', 'add', '192.168.77.1/24', 'dev', 'uplink0');
  await inNode('link', 'set', 'uplink0', 'up');
  await inNode('route', 'add', '10.244.2.0/24', 'via', '192.168.77.2');
  await inNode('route', 'add', '10.244.3.7', 'dev', 'uplink0');
  await inNode('link', 'add', 'vloop0', 'type', 'veth', 'peer', 'name', 'vloop1');
  await inNode('link', 'set', 'vloop0', 'up');
  await inNode('link', 'set', 'vloop1', 'up');
  await inNode('route', 'add', '10.244.4.4', 'dev', 'vloop0');
  return { node, pod, hostVeth };
}

t.test('a veth pod is found from its IP: host veth, namespace id, namespace file', async (t) => {
  const { node, pod, hostVeth } = await podTopology(t);
  const witness = await ipNsids(node);
  const podId = witness.find((w) => w.name === pod.name)?.nsid;
  t.type(podId, 'number', `the kernel gave the pod namespace an id in the node namespace (ip netns list-id: ${JSON.stringify(witness)})`);

  const hostLink = (await links.list({ netns: node.path })).find((l) => l.name === hostVeth)!;
  const eth0 = (await links.list({ netns: pod.path })).find((l) => l.name === 'eth0')!;
  for (const podIP of ['10.244.1.5', 'fd00:10:244:1::5']) {
    const found = await resolvePodInterfaces(podIP, { netns: node.path });
    if (found.kind !== 'found') {
      t.fail(`${podIP}: ${found.reason}: ${found.detail}`);
      continue;
    }
    t.same(found.hostInterface, { index: hostLink.index, name: hostVeth }, `${podIP}: the host-side veth`);
    t.equal(found.peerNetnsId, podId, `${podIP}: the veth's link-netnsid is the pod namespace's id`);
    t.equal(found.netnsPath, pod.path, `${podIP}: the pod's namespace file`);
    t.same(found.podInterface, { index: eth0.index, name: 'eth0' }, `${podIP}: the peer inside the pod`);
  }
});

t.test('addresses that are not a local veth pod say why', async (t) => {
  const { node, hostVeth } = await podTopology(t);
  const cases: Array<[string, string, string | null]> = [
    ['10.244.2.9', 'via-gateway', null],
    ['10.99.0.1', 'no-route', null],
    ['10.244.3.7', 'not-veth', 'uplink0'],
    ['10.244.4.4', 'no-link-netnsid', 'vloop0'],
    ['192.168.77.1', 'not-unicast', null],
  ];
  for (const [address, reason, device] of cases) {
    const result = await resolvePodInterfaces(address, { netns: node.path });
    t.equal(result.kind, 'not-found', `${address} is not a local veth pod`);
    if (result.kind !== 'not-found') continue;
    t.equal(result.reason, reason, `${address}: ${result.detail}`);
    if (device !== null) t.equal(result.hostInterface?.name, device, `${address}: the device it is routed out of`);
  }
  const uplink = await resolvePodInterfaces('10.244.3.7', { netns: node.path });
  t.equal(uplink.kind === 'not-found' ? uplink.hostInterface?.kind : null, 'bridge', 'the non-veth device\'s kind is reported');

  // The pod's namespace exists but no runtime directory holds a file for it.
  const empty = await mkdtemp(join(tmpdir(), 'nodenet-netns-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  const missing = await resolvePodInterfaces('10.244.1.5', { netns: node.path, netnsDirs: [empty, join(empty, 'absent')] });
  t.equal(missing.kind === 'not-found' ? missing.reason : missing.kind, 'no-netns-file');
  t.equal(missing.kind === 'not-found' ? missing.hostInterface?.name : null, hostVeth);
});

t.test('routes.get agrees with ip -j route get', async (t) => {
  const { node, hostVeth } = await podTopology(t);
  const addresses = ['10.244.1.5', 'fd00:10:244:1::5', '10.244.2.9', '10.244.3.7', '192.168.77.1', '192.168.77.20', '127.0.0.1', '::1'];
  for (const address of addresses) {
    const ours = await routes.get(address, { netns: node.path });
    const theirs = await ipRouteGet(node, address);
    t.equal(ours.destination, theirs.dst, `${address}: destination`);
    t.equal(ours.device?.name ?? null, theirs.dev ?? null, `${address}: device`);
    t.equal(ours.gateway, theirs.gateway ?? null, `${address}: gateway`);
    t.equal(ours.preferredSource, theirs.prefsrc ?? null, `${address}: preferred source`);
    t.equal(ours.type, theirs.type ?? 'unicast', `${address}: type`);
    // iproute2 6.1 asks without RTM_F_LOOKUP_TABLE for IPv4, so it prints main's table (or none);
    // where it names a table, ours must be the same.
    if (theirs.table !== undefined) t.equal(tableName(ours.table), theirs.table, `${address}: table`);
  }
  const pod = await routes.get('10.244.1.5', { netns: node.path });
  t.equal(pod.family, 'ipv4');
  t.equal(tableName(pod.table), 'main');
  t.equal(pod.device?.name, hostVeth);
  // Without RTM_F_LOOKUP_TABLE the kernel would say main here. (IPv4's local table is merged into
  // main until a rule is added, so a local address is no test of it.)
  await node.exec('ip', ['route', 'add', '10.244.9.0/24', 'dev', 'vloop0', 'table', '100']);
  await node.exec('ip', ['rule', 'add', 'to', '10.244.9.0/24', 'lookup', '100']);
  const viaRule = await routes.get('10.244.9.9', { netns: node.path });
  t.equal(viaRule.table, 100, 'the table the rule led to');
  t.equal(viaRule.device?.name, 'vloop0');
  const v6 = await routes.get('FD00:10:244:1:0::5', { netns: node.path });
  t.equal(v6.destination, 'fd00:10:244:1::5', 'canonical spelling');
  t.equal(v6.family, 'ipv6');
  t.equal(v6.device?.name, hostVeth);

  for (const address of ['10.99.0.1', '2001:db8::1']) {
    await t.rejects(routes.get(address, { netns: node.path }), { name: 'KernelError', code: 'ENETUNREACH', op: 'routes.get', netns: node.path }, `${address}: no route`);
  }
  await node.exec('ip', ['route', 'add', 'unreachable', '10.50.0.0/16']);
  await t.rejects(routes.get('10.50.0.1', { netns: node.path }), { code: 'EHOSTUNREACH' }, 'an unreachable route');
  await t.rejects(routes.get('10.244.1', { netns: node.path }), TypeError);
});

t.test('routes.netnsId agrees with ip netns list-id and never assigns an id', async (t) => {
  const { node, pod } = await podTopology(t);
  const stranger = await makeNetns(t);
  const before = await ipNsids(node);
  t.equal(await routes.netnsId(pod.path, { netns: node.path }), before.find((w) => w.name === pod.name)?.nsid);
  t.equal(await routes.netnsId(stranger.path, { netns: node.path }), null, 'a namespace with no id in the node namespace');
  t.same(await ipNsids(node), before, 'asking assigned no id');
  // The other direction: the pod namespace gave the node namespace an id too (the veth's other end).
  const back = (await ipNsids(pod)).find((w) => w.name === node.name)?.nsid;
  t.equal(await routes.netnsId(node.path, { netns: pod.path }), back ?? null);

  const notFound = await routes.netnsId('/nonexistent/netns', { netns: node.path }).catch((e: unknown) => e);
  t.ok(isKernelError(notFound), 'a KernelError');
  t.match(notFound, { code: 'ENOENT', op: 'routes.netnsId', object: 'netns /nonexistent/netns', netns: node.path });
  await t.rejects(routes.netnsId('/proc/self/stat', { netns: node.path }), { code: 'EINVAL' }, 'a file that is not a namespace');
});
