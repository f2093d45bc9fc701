// The overlay model: which Links apply to a node, resolved into interfaces in creation order, the
// VXLAN mesh from the other selected Nodes, MTU defaults from the underlay, and a verdict per Link
// that fails only that Link (and what depends on it) on that node.
import t from 'tap';

import { desiredOverlay, selects, vxlanMac, type NodeInput, type OverlayInput } from '../../lib/model/overlays/desired.js';
import type { LinkResource, LinkSpec } from '../../lib/model/overlays/types.js';

const link = (name: string, spec: LinkSpec, generation = 1): LinkResource => ({ apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', metadata: { name, generation }, spec });
const node = (name: string, ip: string | string[], labels: Record<string, string> = { overlay: 'on' }): NodeInput => ({ name, labels, internalIPs: Array.isArray(ip) ? ip : [ip] });

const nodes = [node('n1', '192.168.77.1'), node('n2', '192.168.77.2'), node('n3', '192.168.77.3'), node('off', '192.168.77.9', {})];
const underlay = link('uplink', { interfaceName: 'eth0', device: {}, nodeSelector: { matchLabels: { overlay: 'on' } } });
const bridge = link('ov-bridge', { interfaceName: 'br-ov', bridge: {}, nodeSelector: { matchLabels: { overlay: 'on' } } });
const vxlan = link('ov-vxlan', {
  interfaceName: 'vx-ov',
  master: 'ov-bridge',
  nodeSelector: { matchLabels: { overlay: 'on' } },
  vxlan: { vni: 42, underlay: 'uplink', peers: { mesh: {} } },
});

function input(over: Partial<OverlayInput> = {}): OverlayInput {
  return { node: nodes[0]!, nodes, links: [vxlan, bridge, underlay], facts: { mtus: { eth0: 1500 } }, ...over };
}

t.test('a bridge and a VXLAN mesh over eth0', async (t) => {
  const plan = desiredOverlay(input());
  t.same(
    plan.links.map((l) => [l.interfaceName, l.kind, l.order, l.master]),
    [
      ['br-ov', 'bridge', 0, null],
      ['eth0', 'device', 0, null],
      ['vx-ov', 'vxlan', 1, 'br-ov'],
    ],
    'devices and bridges before the VXLAN enslaved to them',
  );
  const vx = plan.links.find((l) => l.kind === 'vxlan')!;
  t.same(vx.vxlan, {
    vni: 42,
    port: 4789,
    sourcePortRange: null,
    local: '192.168.77.1',
    underlay: 'eth0',
    learning: true,
    ttl: null,
    tos: null,
    group: null,
    meshPeers: ['192.168.77.2', '192.168.77.3'],
    address: vxlanMac('n1', 42),
    meshMacs: [],
  }, 'defaults: port 4789, learning on; the mesh: every other selected node, not the unselected one');
  t.equal(vx.mtu, 1450, 'MTU: the underlay 1500 − 50');
  t.ok(plan.verdicts.every((v) => v.ok), 'every Link ready');
});

t.test('nodes join and leave the mesh', async (t) => {
  const four = [...nodes, node('n4', '192.168.77.4')];
  t.same(desiredOverlay(input({ nodes: four })).links.find((l) => l.kind === 'vxlan')!.vxlan!.meshPeers, ['192.168.77.2', '192.168.77.3', '192.168.77.4']);
  const two = nodes.filter((n) => n.name !== 'n3');
  t.same(desiredOverlay(input({ nodes: two })).links.find((l) => l.kind === 'vxlan')!.vxlan!.meshPeers, ['192.168.77.2']);
  const moved = nodes.map((n) => (n.name === 'n2' ? node('n2', '192.168.77.22') : n));
  t.same(desiredOverlay(input({ nodes: moved })).links.find((l) => l.kind === 'vxlan')!.vxlan!.meshPeers, ['192.168.77.22', '192.168.77.3'], 'an address change follows');
});

t.test('IPv6: the family decides the local address, the peers and the overhead', async (t) => {
  const v6 = link('v6', { interfaceName: 'vx6', vxlan: { vni: 7, underlay: 'uplink', peers: { mesh: { addressFamily: 'IPv6' } } } });
  const dual = [node('n1', ['192.168.77.1', 'fd00::1']), node('n2', ['192.168.77.2', 'fd00::2']), node('n3', '192.168.77.3')];
  const plan = desiredOverlay(input({ node: dual[0]!, nodes: dual, links: [underlay, v6] }));
  const vx = plan.links.find((l) => l.kind === 'vxlan')!;
  t.equal(vx.vxlan!.local, 'fd00::1');
  t.same(vx.vxlan!.meshPeers, ['fd00::2'], 'only nodes with an IPv6 InternalIP');
  t.equal(vx.mtu, 1430, '1500 − 70');
});

t.test('learning off: a per-MAC entry for each peer\'s VXLAN device, whose MAC every node can derive', async (t) => {
  const quiet = link('ov-vxlan', { ...vxlan.spec, vxlan: { ...vxlan.spec.vxlan!, learning: false } });
  const plans = nodes.slice(0, 3).map((n) => desiredOverlay(input({ node: n, links: [quiet, bridge, underlay] })).links.find((l) => l.kind === 'vxlan')!.vxlan!);
  t.same(plans[0]!.meshMacs, [
    { mac: plans[1]!.address, dst: '192.168.77.2' },
    { mac: plans[2]!.address, dst: '192.168.77.3' },
  ], "node 1 points at nodes 2 and 3's own device MACs");
  t.equal(new Set(plans.map((p) => p.address)).size, 3, 'one MAC per node');
  for (const p of plans) t.match(p.address, /^02:[0-9a-f]{2}(:[0-9a-f]{2}){4}$/, `${p.address}: locally administered, unicast`);
  t.not(vxlanMac('n1', 42), vxlanMac('n1', 43), 'and per VNI');
});

t.test('remote peers and explicit settings', async (t) => {
  const remote = link('mc', {
    interfaceName: 'vx-mc',
    mtu: 1400,
    vxlan: { vni: 9, port: 8472, underlay: 'uplink', local: '192.168.77.100', learning: false, ttl: 5, tos: 1, sourcePortRange: { min: 40000, max: 50000 }, peers: { remote: { address: '239.1.1.1' } } },
  });
  const plan = desiredOverlay(input({ links: [underlay, remote] }));
  t.match(plan.links.find((l) => l.kind === 'vxlan'), { mtu: 1400, vxlan: { port: 8472, local: '192.168.77.100', learning: false, ttl: 5, tos: 1, group: '239.1.1.1', meshPeers: [], sourcePortRange: { min: 40000, max: 50000 } } });
});

t.test('failures stay with their Link (and its dependents) on this node', async (t) => {
  const lonely = link('lonely', { interfaceName: 'vx-l', vxlan: { vni: 1, underlay: 'nowhere', peers: { mesh: {} } } });
  const orphan = link('orphan', { interfaceName: 'vx-o', master: 'missing', vxlan: { vni: 2, underlay: 'uplink', peers: { mesh: {} } } });
  const notBridge = link('not-bridge', { interfaceName: 'vx-nb', master: 'uplink', vxlan: { vni: 3, underlay: 'uplink', peers: { mesh: {} } } });
  const twin = link('twin', { interfaceName: 'br-ov', bridge: {} });
  const plan = desiredOverlay(input({ links: [vxlan, bridge, underlay, lonely, orphan, notBridge] }));
  const verdict = (name: string) => plan.verdicts.find((v) => v.link === name);
  t.match(verdict('lonely'), { ok: false, reason: 'UnderlayNotFound', message: /underlay Link nowhere does not apply to node n1/ });
  t.match(verdict('orphan'), { ok: false, reason: 'MasterNotFound' });
  t.match(verdict('not-bridge'), { ok: false, reason: 'MasterNotBridge' });
  t.match(verdict('ov-vxlan'), { ok: true }, 'the good ones are untouched by the bad');
  t.same(plan.links.map((l) => l.interfaceName), ['br-ov', 'eth0', 'vx-ov']);

  const clash = desiredOverlay(input({ links: [vxlan, bridge, underlay, twin] }));
  t.match(clash.verdicts.find((v) => v.link === 'twin'), { ok: false, reason: 'InterfaceNameConflict', message: /also claimed by Link ov-bridge/ });
  t.match(clash.verdicts.find((v) => v.link === 'ov-bridge'), { ok: false, reason: 'InterfaceNameConflict' });
  t.match(clash.verdicts.find((v) => v.link === 'ov-vxlan'), { ok: false, reason: 'MasterFailed' }, 'its dependent fails with it');

  const noIp = desiredOverlay(input({ node: node('n1', []) }));
  t.match(noIp.verdicts.find((v) => v.link === 'ov-vxlan'), { ok: false, reason: 'NoLocalAddress' });
  const noUnderlay = desiredOverlay(input({ facts: { mtus: {} } }));
  t.match(noUnderlay.verdicts.find((v) => v.link === 'ov-vxlan'), { ok: false, reason: 'UnderlayNotFound', message: /interface eth0 does not exist/ });
});

t.test('MTU warnings: a bridge above its VXLAN port, a VXLAN above its underlay', async (t) => {
  const bigBridge = link('ov-bridge', { interfaceName: 'br-ov', bridge: {}, mtu: 1500, nodeSelector: { matchLabels: { overlay: 'on' } } });
  const plan = desiredOverlay(input({ links: [vxlan, bigBridge, underlay] }));
  t.match(plan.verdicts.find((v) => v.link === 'ov-bridge'), { ok: true, message: /MTU 1500 exceeds VXLAN port vx-ov's 1450/ });
  const bigVx = link('ov-vxlan', { ...vxlan.spec, mtu: 1500 });
  t.match(desiredOverlay(input({ links: [bigVx, bridge, underlay] })).verdicts.find((v) => v.link === 'ov-vxlan'), { ok: true, message: /MTU 1500 exceeds what eth0 \(MTU 1500\) carries/ });
});

t.test('a node the Links do not select gets nothing', async (t) => {
  const plan = desiredOverlay(input({ node: nodes[3]! }));
  t.same(plan, { links: [], verdicts: [] });
});

t.test('label selectors as metav1 evaluates them', async (t) => {
  const labels = { zone: 'a', tier: 'edge' };
  t.ok(selects(undefined, labels));
  t.ok(selects({}, labels));
  t.ok(selects({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, labels));
  t.notOk(selects({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels));
  t.ok(selects({ matchExpressions: [{ key: 'gpu', operator: 'DoesNotExist' }] }, labels));
  t.notOk(selects({ matchExpressions: [{ key: 'gpu', operator: 'Exists' }] }, labels));
  t.notOk(selects({ matchLabels: { zone: 'a' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['core'] }] }, labels), 'all terms must hold');
});

t.test('deterministic: input order does not matter', async (t) => {
  const a = desiredOverlay(input({ links: [vxlan, bridge, underlay], nodes }));
  const b = desiredOverlay(input({ links: [underlay, bridge, vxlan], nodes: [...nodes].reverse() }));
  t.same(a, b);
});
