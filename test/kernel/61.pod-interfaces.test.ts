// The primary path of the pod → interfaces resolver on a real kernel: a "node" namespace and a
// "pod" namespace joined by a veth the way a veth CNI joins them (eth0 in the pod, the host end in
// the node, the pod IP routed on-link through the host end). resolvePodInterfaces, run against the
// node namespace, finds the host-side veth and the pod's /var/run/netns file through the route, the
// veth's link-netnsid and RTM_GETNSID. routes.get is checked against `ip -j route get` and
// routes.netnsId against `ip netns list-id`, and reading an id is shown not to assign one.
//
// A bridge CNI's node too: cni0 with the pod CIDR on-link and two pods whose host-side veths are its
// ports. There the route names the bridge, and the resolver finds the port whose pod namespace has
// the pod IP as a local address (`ip -j link` and `bridge -j link` witness the ports).
//
// Every address and route exists only inside the test namespaces; both are removed in teardown.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { findNetnsFilesByIds, resolvePodInterfaces } from '../../lib/controller/shaping/pod-interfaces.js';
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
  await inNode('link', 'add', 'ifb0', 'type', 'ifb');
  await inNode('link', 'set', 'ifb0', 'up');
  await inNode('route', 'add', '10.244.3.8', 'dev', 'ifb0');
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
    t.equal(found.via, 'route', `${podIP}: found through the route`);
    t.equal(found.bridge, null);
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
    ['10.244.3.7', 'not-on-bridge', 'uplink0'],
    ['10.244.3.8', 'not-veth', 'ifb0'],
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
  t.equal(uplink.kind === 'not-found' ? uplink.hostInterface?.kind : null, 'bridge', 'the bridge is reported as such');
  const ifb = await resolvePodInterfaces('10.244.3.8', { netns: node.path });
  t.equal(ifb.kind === 'not-found' ? ifb.hostInterface?.kind : null, 'ifb', 'the non-veth device\'s kind is reported');

  // The pod's namespace exists but no runtime directory holds a file for it.
  const empty = await mkdtemp(join(tmpdir(), 'nodenet-netns-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  const missing = await resolvePodInterfaces('10.244.1.5', { netns: node.path, netnsDirs: [empty, join(empty, 'absent')] });
  t.equal(missing.kind === 'not-found' ? missing.reason : missing.kind, 'no-netns-file');
  t.equal(missing.kind === 'not-found' ? missing.hostInterface?.name : null, hostVeth);
});

interface IpLinkJson {
  ifindex: number;
  ifname: string;
  master?: string;
  link_index?: number;
  link_netnsid?: number;
}

async function ipLinks(ns: TestNetns, ...filter: string[]): Promise<IpLinkJson[]> {
  return JSON.parse(await ns.exec('ip', ['-j', 'link', 'show', ...filter])) as IpLinkJson[];
}

interface BridgeTopology {
  node: TestNetns;
  pods: Array<{ ns: TestNetns; ip: string; hostVeth: string }>;
}

// A bridge CNI's node: cni0 holds the pod CIDR's gateway address, so the whole /24 is on-link on
// the bridge; each pod's host-side veth is a port of cni0 and its eth0 has the pod IP. A third
// port's peer stays in the node namespace (as a host-side helper interface might), and no packet
// is ever sent, so the node has no neighbour entry and the bridge no learned MAC for any pod.
async function bridgeTopology(t: Parameters<typeof makeNetns>[0]): Promise<BridgeTopology> {
  const node = await makeNetns(t);
  const inNode = (...args: string[]) => node.exec('ip', args);
  await inNode('link', 'add', 'cni0', 'type', 'bridge');
  await inNode('addr', 'add', '10.244.2.1/24', 'dev', 'cni0');
  await inNode('link', 'set', 'cni0', 'up');
  const pods: BridgeTopology['pods'] = [];
  for (const [ip, hostVeth] of [['10.244.2.5', 'veth0b5a'], ['10.244.2.6', 'veth0b6a']] as const) {
    const ns = await makeNetns(t);
    await inNode('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name);
    await inNode('link', 'set', hostVeth, 'master', 'cni0');
    await inNode('link', 'set', hostVeth, 'up');
    await ns.exec('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await ns.exec('ip', ['link', 'set', 'eth0', 'up']);
    await ns.exec('ip', ['route', 'add', 'default', 'via', '10.244.2.1']);
    pods.push({ ns, ip, hostVeth });
  }
  await inNode('link', 'add', 'vhelp0', 'type', 'veth', 'peer', 'name', 'vhelp1');
  await inNode('link', 'set', 'vhelp0', 'master', 'cni0');
  await inNode('link', 'set', 'vhelp0', 'up');
  return { node, pods };
}

t.test('a bridge CNI pod is found behind the bridge port whose namespace has its IP', async (t) => {
  const { node, pods } = await bridgeTopology(t);
  const ports = await ipLinks(node, 'master', 'cni0');
  t.same(ports.map((p) => p.ifname).sort(), ['veth0b5a', 'veth0b6a', 'vhelp0'], 'ip -j link show master cni0: the bridge\'s ports');
  t.equal((await ipRouteGet(node, '10.244.2.5')).dev, 'cni0', 'ip route get: the pod IP is routed out of the bridge');
  t.equal((await node.exec('ip', ['-j', 'neigh', 'show', 'dev', 'cni0'])).trim().replace(/^\[\]$/, ''), '', 'no neighbour entry: the FDB could not name the pod');
  const nsids = await ipNsids(node);

  for (const pod of pods) {
    const found = await resolvePodInterfaces(pod.ip, { netns: node.path });
    if (found.kind !== 'found') {
      t.fail(`${pod.ip}: ${found.reason}: ${found.detail}`);
      continue;
    }
    const port = ports.find((p) => p.ifname === pod.hostVeth)!;
    const eth0 = (await ipLinks(pod.ns, 'eth0'))[0]!;
    t.equal(found.via, 'bridge', `${pod.ip}: found through the bridge`);
    t.same(found.bridge?.name, 'cni0');
    t.same(found.hostInterface, { index: port.ifindex, name: pod.hostVeth }, `${pod.ip}: its own port`);
    t.equal(found.peerNetnsId, port.link_netnsid, `${pod.ip}: the port's link-netnsid`);
    t.equal(found.peerNetnsId, nsids.find((w) => w.name === pod.ns.name)?.nsid, `${pod.ip}: which ip netns list-id gives the pod namespace`);
    t.equal(found.netnsPath, pod.ns.path, `${pod.ip}: the pod's namespace file`);
    t.same(found.podInterface, { index: eth0.ifindex, name: 'eth0' }, `${pod.ip}: eth0 in the pod`);
    t.equal(port.link_index, eth0.ifindex, `${pod.ip}: ip -j link agrees the port's peer is that eth0`);
    t.equal(found.route.device?.name, 'cni0');
  }

  // In the bridge's subnet but no pod's: every pod namespace is asked, none has it as its own
  // (the helper port, whose peer is in the node namespace, is not counted as a pod's).
  const stray = await resolvePodInterfaces('10.244.2.9', { netns: node.path });
  t.match(stray, { kind: 'not-found', reason: 'not-on-bridge', hostInterface: { name: 'cni0', kind: 'bridge' } }, '10.244.2.9: not a pod on the bridge');
  if (stray.kind === 'not-found') t.match(stray.detail, /any of its 2 veth port/, stray.detail);
  // The bridge's own address is the node's: a local route, not a pod.
  t.match(await resolvePodInterfaces('10.244.2.1', { netns: node.path }), { kind: 'not-found', reason: 'not-unicast' });
  // Ports whose namespaces have no file where the resolver looks.
  const empty = await mkdtemp(join(tmpdir(), 'nodenet-netns-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  t.match(await resolvePodInterfaces('10.244.2.5', { netns: node.path, netnsDirs: [empty] }), { kind: 'not-found', reason: 'no-netns-file', hostInterface: { name: 'cni0' } });
});

t.test('findNetnsFilesByIds maps many ids in one pass over the directories', async (t) => {
  const { node, pods } = await bridgeTopology(t);
  const nsids = await ipNsids(node);
  const ids = pods.map((p) => nsids.find((w) => w.name === p.ns.name)!.nsid);
  const unused = Math.max(...nsids.map((w) => w.nsid)) + 1000;
  const empty = await mkdtemp(join(tmpdir(), 'nodenet-netns-'));
  t.teardown(() => rm(empty, { recursive: true, force: true }));
  const map = await findNetnsFilesByIds([...ids, unused], [join(empty, 'absent'), empty, '/var/run/netns'], { netns: node.path });
  t.same([...map.entries()].sort((a, b) => a[0] - b[0]), ids.map((id, i) => [id, pods[i]!.ns.path]).sort((a, b) => (a[0] as number) - (b[0] as number)), 'each id to its file; an id no namespace has is absent');
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
