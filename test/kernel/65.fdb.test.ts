// fdb.add/remove write a VXLAN device's forwarding entries and fdb.list reads them; `bridge -j fdb
// show` is the witness. Then the point of it all: two nodes' pods talk across a VXLAN whose only
// peers are all-zero FDB entries.
import t, { type Test } from 'tap';

import { fdb, isKernelError, links, type FdbEntry } from '../../lib/kernel/index.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

const ZERO = '00:00:00:00:00:00';

interface BridgeFdbJson {
  mac: string;
  /** Left out when the listing is of one device. */
  ifname?: string;
  dst?: string;
  port?: number;
  vni?: number;
  vlan?: number;
  viaIf?: string;
  master?: string;
  flags: string[];
  state: string;
}

async function bridgeFdb(ns: TestNetns, device?: string): Promise<BridgeFdbJson[]> {
  return JSON.parse(await ns.exec('bridge', ['-j', 'fdb', 'show', ...(device ? ['dev', device] : [])])) as BridgeFdbJson[];
}

// One line per entry with everything both sides report, in a comparable spelling.
function ourKey(e: FdbEntry): string {
  const state = e.state === 'reachable' ? '' : e.state;
  return [e.mac, e.device, e.dst, e.port, e.vni, e.vlan, e.via, e.master, e.flags.join(','), state].map((v) => v ?? '-').join(' ');
}
function witnessKey(w: BridgeFdbJson, device?: string): string {
  return [w.mac, w.ifname ?? device, w.dst, w.port, w.vni, w.vlan, w.viaIf, w.master, w.flags.join(','), w.state].map((v) => v ?? '-').join(' ');
}

async function sameAsWitness(t: Test, ns: TestNetns, device?: string): Promise<FdbEntry[]> {
  const ours = await fdb.list({ netns: ns.path, ...(device ? { device } : {}) });
  t.same(ours.map(ourKey).sort(), (await bridgeFdb(ns, device)).map((w) => witnessKey(w, device)).sort(), `fdb.list ${device ?? 'of all devices'} is what bridge fdb shows`);
  return ours;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

async function vxlanNode(t: Test): Promise<TestNetns> {
  const ns = await makeNetns(t);
  await ns.exec('ip', ['link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1']);
  await links.create({ netns: ns.path, name: 'vx0', spec: { kind: 'vxlan', vni: 42, local: '192.168.77.1', underlay: 'ul0', learning: false } });
  return ns;
}

t.test('all-zero entries appended, per-MAC entries replaced, one removed', async (t) => {
  const ns = await vxlanNode(t);
  const at = { netns: ns.path, device: 'vx0' };
  for (const dst of ['192.168.77.2', '192.168.77.3', '192.168.77.4']) await fdb.add({ ...at, mac: ZERO, dst, append: true });
  await fdb.add({ ...at, mac: ZERO, dst: '192.168.77.3' });
  await fdb.add({ ...at, mac: '02:00:00:00:00:01', dst: '192.168.77.2' });
  await fdb.add({ ...at, mac: '02:00:00:00:00:02', dst: '192.168.77.3' });
  await fdb.add({ ...at, mac: '02:00:00:00:00:01', dst: '192.168.77.4' });
  await links.create({ netns: ns.path, name: 'vx6', spec: { kind: 'vxlan', vni: 43, local: 'fd00::1', underlay: 'ul0' } });
  await fdb.add({ netns: ns.path, device: 'vx6', mac: '02:00:00:00:00:03', dst: 'fd00::7' });
  await fdb.add({ netns: ns.path, device: 'vx6', mac: ZERO, dst: 'fd00::8' });
  const mixed = await rejection(fdb.add({ ...at, mac: '02:00:00:00:00:03', dst: 'fd00::7' }));
  t.ok(isKernelError(mixed) && mixed.code === 'EAFNOSUPPORT', 'an IPv6 peer for an IPv4 VXLAN is refused');

  const ours = await sameAsWitness(t, ns, 'vx0');
  const pairs = (entries: FdbEntry[]) => entries.map((e) => `${e.mac} ${e.dst}`).sort();
  t.same(pairs(ours), [
    `${ZERO} 192.168.77.2`,
    `${ZERO} 192.168.77.3`,
    `${ZERO} 192.168.77.4`,
    '02:00:00:00:00:01 192.168.77.4',
    '02:00:00:00:00:02 192.168.77.3',
  ], 'three peers once each; a unicast MAC replaced, not duplicated');
  for (const e of ours) {
    t.equal(e.device, 'vx0');
    t.ok(e.permanent && e.state === 'permanent', `${e.mac} ${e.dst} permanent`);
    t.ok(e.self && e.flags.includes('self'), `${e.mac} ${e.dst} self`);
    t.equal(e.vni, null, 'the device VNI is not repeated per entry');
    t.equal(e.port, null, 'the device port is not repeated per entry');
  }

  await fdb.remove({ ...at, mac: '02:00:00:00:00:02' });
  await fdb.remove({ ...at, mac: ZERO, dst: '192.168.77.3' });
  t.same(pairs(await sameAsWitness(t, ns, 'vx0')), [
    `${ZERO} 192.168.77.2`,
    `${ZERO} 192.168.77.4`,
    '02:00:00:00:00:01 192.168.77.4',
  ]);
  t.same(pairs(await sameAsWitness(t, ns, 'vx6')), [`${ZERO} fd00::8`, '02:00:00:00:00:03 fd00::7'], 'IPv6 peers');
  await sameAsWitness(t, ns);
});

t.test('entries made by bridge fdb decode the same: vni, port, via, master, other devices', async (t) => {
  const ns = await vxlanNode(t);
  const bridge = (...args: string[]) => ns.exec('bridge', ['fdb', ...args]);
  await bridge('add', '02:00:00:00:00:01', 'dev', 'vx0', 'dst', '192.168.77.9', 'vni', '99', 'port', '5000', 'self', 'permanent');
  await bridge('add', '02:00:00:00:00:02', 'dev', 'vx0', 'dst', '192.168.77.9', 'via', 'ul0', 'self', 'permanent');
  await bridge('add', '02:00:00:00:00:03', 'dev', 'vx0', 'dst', '192.168.77.9', 'self', 'static');
  await links.create({ netns: ns.path, name: 'br0', spec: { kind: 'bridge' }, up: true });
  await links.update({ netns: ns.path, name: 'ul1', master: 'br0', up: true });
  // (No vlan: this kernel's bridge has no VLAN filtering, CONFIG_BRIDGE_VLAN_FILTERING.)
  await bridge('add', '02:00:00:00:00:04', 'dev', 'ul1', 'master', 'static');

  const ours = await sameAsWitness(t, ns);
  const byMac = new Map(ours.map((e) => [`${e.mac} ${e.device}`, e]));
  t.match(byMac.get('02:00:00:00:00:01 vx0'), { vni: 99, port: 5000, dst: '192.168.77.9', permanent: true });
  t.match(byMac.get('02:00:00:00:00:02 vx0'), { via: 'ul0', viaIndex: Number });
  t.match(byMac.get('02:00:00:00:00:03 vx0'), { state: 'static', permanent: false });
  t.match(byMac.get('02:00:00:00:00:04 ul1'), { master: 'br0', masterIndex: Number, self: false, state: 'static' });
  await sameAsWitness(t, ns, 'ul1');
});

t.test('missing entries, devices and bad input', async (t) => {
  const ns = await vxlanNode(t);
  const at = { netns: ns.path, device: 'vx0' };
  const missing = await rejection(fdb.remove({ ...at, mac: '02:00:00:00:00:77' }));
  t.ok(isKernelError(missing));
  if (isKernelError(missing)) {
    t.equal(missing.code, 'ENOENT');
    t.equal(missing.op, 'fdb.remove');
    t.equal(missing.object, 'fdb 02:00:00:00:00:77 on dev vx0');
    t.equal(missing.netns, ns.path);
  }
  await fdb.add({ ...at, mac: ZERO, dst: '192.168.77.2' });
  // The kernel's own answer: a destination the MAC's entry does not have is removed "successfully".
  await fdb.remove({ ...at, mac: ZERO, dst: '192.168.77.99' });
  t.equal((await fdb.list(at)).length, 1, 'nothing changed');
  const replaceFlood = await rejection(fdb.add({ ...at, mac: ZERO, dst: '192.168.77.3', append: false }));
  t.ok(isKernelError(replaceFlood) && replaceFlood.code === 'EOPNOTSUPP' && /non-unicast/.test(replaceFlood.extack ?? ''), 'no replace of an all-zero entry');

  const noDevice = await rejection(fdb.add({ netns: ns.path, device: 'nope0', mac: ZERO, dst: '192.168.77.2' }));
  t.ok(isKernelError(noDevice) && noDevice.code === 'ENODEV' && noDevice.op === 'fdb.add');
  const noList = await rejection(fdb.list({ netns: ns.path, device: 'nope0' }));
  t.ok(isKernelError(noList) && noList.code === 'ENODEV' && noList.op === 'fdb.list');
  await t.rejects(fdb.add({ ...at, mac: '02:00:00:00:00', dst: '192.168.77.2' }), TypeError);
  await t.rejects(fdb.add({ ...at, mac: 'zz:00:00:00:00:00' }), TypeError);
  await t.rejects(fdb.add({ ...at, mac: ZERO, dst: '192.168.77' }), TypeError);
  await t.rejects(fdb.remove({ ...at, mac: ZERO, dst: 'host' }), TypeError);
});

// A "node": the underlay end of the veth, a bridge with a VXLAN and the host side of a pod's veth.
async function overlayNode(t: Test, node: TestNetns, pod: TestNetns, underlayIp: string, peerIp: string, podIp: string): Promise<void> {
  await node.exec('ip', ['addr', 'add', `${underlayIp}/24`, 'dev', 'ul0']);
  await node.exec('ip', ['link', 'set', 'ul0', 'up']);
  await links.create({ netns: node.path, name: 'br0', spec: { kind: 'bridge' }, alias: 'nodenet:link/test', up: true });
  const vx = await links.create({
    netns: node.path,
    name: 'vx0',
    spec: { kind: 'vxlan', vni: 42, local: underlayIp, underlay: 'ul0', learning: false },
    alias: 'nodenet:link/test-vx',
    master: 'br0',
    up: true,
  });
  t.ok(vx.mtu <= 1450, `VXLAN MTU ${vx.mtu} leaves room for the outer headers`);
  await fdb.add({ netns: node.path, device: 'vx0', mac: ZERO, dst: peerIp });
  await node.exec('ip', ['link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
  await links.update({ netns: node.path, name: 'hv0', master: 'br0', up: true });
  await pod.exec('ip', ['addr', 'add', `${podIp}/24`, 'dev', 'eth0']);
  await pod.exec('ip', ['link', 'set', 'eth0', 'mtu', '1450', 'up']);
}

t.test('dataplane: pods on two nodes ping across the VXLAN full mesh', async (t) => {
  const [nodeA, nodeB, podA, podB] = await Promise.all([makeNetns(t), makeNetns(t), makeNetns(t), makeNetns(t)]);
  await nodeA.exec('ip', ['link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', nodeB.name]);
  await overlayNode(t, nodeA, podA, '192.168.77.1', '192.168.77.2', '10.244.0.1');
  await overlayNode(t, nodeB, podB, '192.168.77.2', '192.168.77.1', '10.244.0.2');

  const ping = await podA.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.244.0.2']);
  t.match(ping, / 0% packet loss/, 'small packets');
  // 1422 bytes of ICMP payload + 28 = 1450: a full inner frame, never fragmented.
  const big = await podB.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-M', 'do', '-s', '1422', '10.244.0.1']);
  t.match(big, / 0% packet loss/, 'full-MTU packets');
  // Learning is off: the remote pod's MAC is known only through the all-zero entries.
  const learned = (await fdb.list({ netns: nodeA.path, device: 'vx0' })).filter((e) => e.self && e.mac !== ZERO);
  t.same(learned, [], 'the VXLAN learned no remote (the bridge above it learns as usual)');
});
