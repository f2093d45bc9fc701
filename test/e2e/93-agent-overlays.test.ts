// Overlays end to end on a real API server: three "node" namespaces joined by an underlay bridge
// (in a fabric namespace of their own), one agent per node with OVERLAYS on, and a "pod" namespace
// per node attached to the overlay bridge the agent makes. Applying the Link resources makes the
// pods reach each other across nodes through the VXLAN mesh; deleting a Node takes its FDB entries
// off the others; deleting the Links leaves no nodenet link on any node. `bridge -j fdb` and
// `ip -j link` are the witnesses; each agent's NodeNetworkStatus is read back.
import { join } from 'node:path';

import { CustomObjectsApi } from '@kubernetes/client-node';
import t from 'tap';

import { applyAgentRbac, lockFileFor, runNodenet, startAgent, type AgentProcess } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { runAllowingFailure } from '../helpers/exec.js';
import { eventually, kubeFixture, type KubeFixture } from '../helpers/kube.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);
await cluster.kubectl(['apply', '-f', join(repoRoot, 'deploy', 'crds')]);
await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/links.nodenet.io', 'crd/nodenetworkstatuses.nodenet.io']);

const custom = cluster.kc.makeApiClient(CustomObjectsApi);
const GROUP = { group: 'nodenet.io', version: 'v1alpha1' };

interface SimNode {
  name: string;
  ns: TestNetns;
  ip: string;
  agent: AgentProcess;
  pod: TestNetns | null;
  podIP: string;
}

interface IpLink {
  ifname: string;
  ifalias?: string;
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; port?: number; local?: string } };
}

async function ipLinks(ns: TestNetns): Promise<IpLink[]> {
  return JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show'])) as IpLink[];
}

async function meshPeers(ns: TestNetns, dev: string): Promise<string[]> {
  const entries = JSON.parse(await ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', dev])) as Array<{ mac: string; dst?: string }>;
  return entries.filter((e) => e.mac === '00:00:00:00:00:00' && e.dst).map((e) => e.dst!).sort();
}

async function fabric(t: Parameters<typeof makeNetns>[0]): Promise<TestNetns> {
  const f = await makeNetns(t);
  await f.exec('ip', ['link', 'add', 'fab0', 'type', 'bridge']);
  await f.exec('ip', ['link', 'set', 'fab0', 'up']);
  return f;
}

let counter = 0;

async function simNode(t: Parameters<typeof makeNetns>[0] & { fail(m: string): void }, k: KubeFixture, fab: TestNetns, n: number): Promise<SimNode> {
  const ns = await makeNetns(t);
  const name = `ov${n}-${k.namespace}`.slice(0, 60);
  const ip = `192.168.77.${n}`;
  const port = `fp${process.pid % 10000}x${++counter}`;
  await fab.exec('ip', ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
  await fab.exec('ip', ['link', 'set', port, 'master', 'fab0', 'up']);
  await ns.exec('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await ns.exec('ip', ['link', 'set', 'eth0', 'up']);
  await k.createNode({ name, internalIPs: [ip], labels: { 'overlay.test/on': k.namespace } });
  const agent = await startAgent(t, { cluster, netns: ns, env: { NODE_NAME: name, OVERLAYS: 'true', SHAPING: 'false' } });
  return { name, ns, ip, agent, pod: null, podIP: `10.99.0.${n}` };
}

/** A pod on the node's overlay bridge: a veth from a new namespace, its host end enslaved to br-ov. */
async function attachPod(t: Parameters<typeof makeNetns>[0], node: SimNode): Promise<void> {
  const pod = await makeNetns(t);
  const host = `op${process.pid % 10000}x${++counter}`;
  await node.ns.exec('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
  await node.ns.exec('ip', ['link', 'set', host, 'master', 'br-ov', 'up']);
  await pod.exec('ip', ['link', 'set', 'eth0', 'mtu', '1450']);
  await pod.exec('ip', ['addr', 'add', `${node.podIP}/24`, 'dev', 'eth0']);
  await pod.exec('ip', ['link', 'set', 'eth0', 'up']);
  node.pod = pod;
}

async function ping(from: TestNetns, to: string): Promise<boolean> {
  const r = await runAllowingFailure('ip', ['netns', 'exec', from.name, 'ping', '-c', '2', '-i', '0.2', '-W', '2', '-q', to]);
  return r.code === 0;
}

function linkObjects(selectorValue: string) {
  const nodeSelector = { matchLabels: { 'overlay.test/on': selectorValue } };
  return [
    { apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', metadata: { name: `uplink-${selectorValue}` }, spec: { interfaceName: 'eth0', nodeSelector, device: {} } },
    { apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', metadata: { name: `bridge-${selectorValue}` }, spec: { interfaceName: 'br-ov', nodeSelector, bridge: {} } },
    {
      apiVersion: 'nodenet.io/v1alpha1',
      kind: 'Link',
      metadata: { name: `vxlan-${selectorValue}` },
      spec: { interfaceName: 'vx-ov', nodeSelector, master: `bridge-${selectorValue}`, vxlan: { vni: 42, underlay: `uplink-${selectorValue}`, peers: { mesh: {} } } },
    },
  ];
}

t.test('three nodes: a VXLAN mesh that pods ping across, following Nodes, gone with its Links', async (t) => {
  const k = await kubeFixture(t, cluster);
  const fab = await fabric(t);
  const nodes = [await simNode(t, k, fab, 1), await simNode(t, k, fab, 2), await simNode(t, k, fab, 3)];
  await Promise.all(nodes.map((n) => n.agent.ready()));

  const objects = linkObjects(k.namespace);
  t.teardown(async () => {
    for (const o of objects) await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: o.metadata.name }).catch(() => undefined);
  });
  for (const o of objects) await custom.createClusterCustomObject({ ...GROUP, plural: 'links', body: o });

  for (const n of nodes) {
    await eventually(async () => {
      const peers = await meshPeers(n.ns, 'vx-ov');
      const want = nodes.filter((o) => o !== n).map((o) => o.ip).sort();
      if (JSON.stringify(peers) !== JSON.stringify(want)) throw new Error(`${n.name}: mesh ${peers.join(',')} (want ${want.join(',')})`);
    }, 30_000);
    const links = await ipLinks(n.ns);
    const vx = links.find((l) => l.ifname === 'vx-ov')!;
    t.match(vx, { mtu: 1450, master: 'br-ov', ifalias: `nodenet:link/vxlan-${k.namespace}`, linkinfo: { info_kind: 'vxlan', info_data: { id: 42, port: 4789, local: n.ip } } }, `${n.name}: the VXLAN as planned`);
    t.match(links.find((l) => l.ifname === 'br-ov'), { ifalias: `nodenet:link/bridge-${k.namespace}`, linkinfo: { info_kind: 'bridge' } });
  }
  t.pass('exactly two all-zero FDB entries on each node: the other two');

  for (const n of nodes) await attachPod(t, n);
  t.ok(await ping(nodes[0]!.pod!, nodes[1]!.podIP), 'pod on node 1 reaches the pod on node 2 across the overlay');
  t.ok(await ping(nodes[0]!.pod!, nodes[2]!.podIP), 'and the pod on node 3');
  t.ok(await ping(nodes[2]!.pod!, nodes[1]!.podIP), 'node 3 to node 2 too');

  for (const n of nodes) {
    const status = await eventually(async () => {
      const s = (await custom.getClusterCustomObject({ ...GROUP, plural: 'nodenetworkstatuses', name: n.name })) as {
        metadata: { ownerReferences?: Array<{ kind: string; name: string }> };
        status?: { summary?: string; links?: Array<{ name: string; conditions: Array<{ type: string; status: string; observedGeneration: number }> }> };
      };
      if (s.status?.summary !== '3/3 ready') throw new Error(`${n.name}: ${JSON.stringify(s.status)}`);
      return s;
    }, 20_000);
    t.match(status.metadata.ownerReferences, [{ kind: 'Node', name: n.name }], `${n.name}'s status is owned by its Node`);
    t.same(status.status!.links!.map((l) => [l.name, l.conditions[0]!.status]).sort(), objects.map((o) => [o.metadata.name, 'True']).sort());
  }

  await k.core.deleteNode({ name: nodes[2]!.name });
  for (const n of nodes.slice(0, 2)) {
    await eventually(async () => {
      const peers = await meshPeers(n.ns, 'vx-ov');
      if (peers.length !== 1 || peers[0] === nodes[2]!.ip) throw new Error(`${n.name}: mesh ${peers.join(',')}`);
    }, 20_000);
  }
  t.pass('a deleted Node leaves the mesh on the others');
  t.ok(await ping(nodes[0]!.pod!, nodes[1]!.podIP), 'and the remaining pods still reach each other');

  for (const o of objects) await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: o.metadata.name });
  for (const n of nodes.slice(0, 2)) {
    await eventually(async () => {
      const ours = (await ipLinks(n.ns)).filter((l) => (l.ifalias ?? '').startsWith('nodenet:'));
      if (ours.length) throw new Error(`${n.name}: ${ours.map((l) => l.ifname).join(', ')} left`);
    }, 20_000);
    t.ok((await ipLinks(n.ns)).some((l) => l.ifname === 'eth0'), `${n.name}: the underlay device, not nodenet's, stays`);
  }
  t.pass('deleting the Links leaves no nodenet link on any node');
});

t.test("a name clash and a missing underlay fail that Link on that node only, touching nothing that is not nodenet's", async (t) => {
  const k = await kubeFixture(t, cluster);
  const fab = await fabric(t);
  const a = await simNode(t, k, fab, 11);
  const b = await simNode(t, k, fab, 12);
  const c = await simNode(t, k, fab, 13);
  // On node a, someone else's bridge already has the name; on node c, the CNI's own VXLAN uses VNI
  // 42 on port 4789.
  await a.ns.exec('ip', ['link', 'add', 'br-ov', 'type', 'bridge']);
  await c.ns.exec('ip', ['link', 'add', 'vxcni', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'dev', 'eth0']);
  await Promise.all([a.agent.ready(), b.agent.ready(), c.agent.ready()]);
  const objects = linkObjects(k.namespace);
  const broken = { apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', metadata: { name: `lost-${k.namespace}` }, spec: { interfaceName: 'vx-lost', vxlan: { vni: 77, underlay: `no-such-${k.namespace}`, peers: { mesh: {} } }, nodeSelector: { matchLabels: { 'overlay.test/on': k.namespace } } } };
  t.teardown(async () => {
    for (const o of [...objects, broken]) await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: o.metadata.name }).catch(() => undefined);
  });
  for (const o of [...objects, broken]) await custom.createClusterCustomObject({ ...GROUP, plural: 'links', body: o });

  const conditionsOf = async (node: SimNode) => {
    const s = (await custom.getClusterCustomObject({ ...GROUP, plural: 'nodenetworkstatuses', name: node.name })) as {
      status?: { links?: Array<{ name: string; conditions: Array<{ status: string; reason: string; message: string }> }> };
    };
    return new Map((s.status?.links ?? []).map((l) => [l.name, l.conditions[0]!]));
  };
  const onA = await eventually(async () => {
    const c = await conditionsOf(a);
    if (c.get(`bridge-${k.namespace}`)?.reason !== 'NameConflict') throw new Error(JSON.stringify([...c]));
    return c;
  }, 30_000);
  t.match(onA.get(`bridge-${k.namespace}`), { status: 'False', reason: 'NameConflict', message: /br-ov exists and is not nodenet's/ });
  t.match(onA.get(`vxlan-${k.namespace}`), { status: 'False', reason: 'MasterNotReady' }, 'its dependent fails with it on that node');
  t.match(onA.get(`lost-${k.namespace}`), { status: 'False', reason: 'UnderlayNotFound' });
  const foreign = (await ipLinks(a.ns)).find((l) => l.ifname === 'br-ov');
  t.equal(foreign?.ifalias, undefined, "someone else's bridge is untouched (no alias written)");

  const onB = await eventually(async () => {
    const c = await conditionsOf(b);
    if (c.get(`vxlan-${k.namespace}`)?.status !== 'True') throw new Error(JSON.stringify([...c]));
    return c;
  }, 30_000);
  t.match(onB.get(`bridge-${k.namespace}`), { status: 'True' }, 'node b is not affected');
  t.match(onB.get(`lost-${k.namespace}`), { status: 'False', reason: 'UnderlayNotFound' });

  const onC = await eventually(async () => {
    const found = await conditionsOf(c);
    if (found.get(`vxlan-${k.namespace}`)?.reason !== 'VniConflict') throw new Error(JSON.stringify([...found]));
    return found;
  }, 30_000);
  t.match(onC.get(`vxlan-${k.namespace}`), { status: 'False', message: /vxcni \(not nodenet's\) already uses VNI 42 on UDP port 4789/ }, 'a VNI clash with the CNI\'s VXLAN is reported');
  t.match(onC.get(`bridge-${k.namespace}`), { status: 'True' }, 'the rest of node c is ready');
  const cni = (await ipLinks(c.ns)).find((l) => l.ifname === 'vxcni');
  t.match(cni, { linkinfo: { info_data: { id: 42 } } }, "the CNI's VXLAN is untouched");
  t.equal(cni?.ifalias, undefined);
});

t.test('a fourth node converges everywhere; a VNI change re-creates the VXLAN in its bridge; unselected and restarted nodes clean up', async (t) => {
  const k = await kubeFixture(t, cluster);
  const fab = await fabric(t);
  const nodes = [await simNode(t, k, fab, 21), await simNode(t, k, fab, 22), await simNode(t, k, fab, 23)];
  await Promise.all(nodes.map((n) => n.agent.ready()));
  const objects = linkObjects(k.namespace);
  t.teardown(async () => {
    for (const o of objects) await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: o.metadata.name }).catch(() => undefined);
  });
  for (const o of objects) await custom.createClusterCustomObject({ ...GROUP, plural: 'links', body: o });
  const meshIs = async (all: SimNode[]) => {
    for (const n of all) {
      await eventually(async () => {
        const want = all.filter((o) => o !== n).map((o) => o.ip).sort();
        const peers = await meshPeers(n.ns, 'vx-ov');
        if (JSON.stringify(peers) !== JSON.stringify(want)) throw new Error(`${n.name}: mesh ${peers.join(',')} (want ${want.join(',')})`);
      }, 30_000);
    }
  };
  await meshIs(nodes);
  const bridgeInfo = JSON.parse(await nodes[0]!.ns.exec('ip', ['-d', '-j', 'link', 'show', 'br-ov'])) as Array<{ linkinfo: { info_data: { nf_call_iptables?: number } } }>;
  t.equal(bridgeInfo[0]!.linkinfo.info_data.nf_call_iptables, 0, "nf_call_iptables is off on nodenet's bridge");

  nodes.push(await simNode(t, k, fab, 24));
  await nodes[3]!.agent.ready();
  await meshIs(nodes);
  t.pass('a fourth node converges everywhere: in every mesh, with the others in its own');

  const vxlanName = `vxlan-${k.namespace}`;
  await custom.patchClusterCustomObject(
    { ...GROUP, plural: 'links', name: vxlanName, body: [{ op: 'replace', path: '/spec/vxlan/vni', value: 43 }] },
  );
  for (const n of nodes) {
    await eventually(async () => {
      const vx = (await ipLinks(n.ns)).find((l) => l.ifname === 'vx-ov');
      if (vx?.linkinfo?.info_data?.id !== 43 || vx.master !== 'br-ov') throw new Error(`${n.name}: ${JSON.stringify(vx)}`);
    }, 20_000);
  }
  await meshIs(nodes);
  t.pass('VNI 43 everywhere, back in its bridge, with its mesh');

  // Node 4 is no longer selected: its links go, and the others drop it from their mesh.
  await k.core.patchNode({ name: nodes[3]!.name, body: [{ op: 'remove', path: '/metadata/labels/overlay.test~1on' }] });
  await eventually(async () => {
    const ours = (await ipLinks(nodes[3]!.ns)).filter((l) => (l.ifalias ?? '').startsWith('nodenet:'));
    if (ours.length) throw new Error(`left: ${ours.map((l) => l.ifname).join(', ')}`);
  }, 20_000);
  await meshIs(nodes.slice(0, 3));
  t.pass('an unselected node loses its links and leaves the others\' meshes');

  // A restart adopts what is there; a Link deleted while the agent was down is removed when it is back.
  t.same(await nodes[0]!.agent.stop('SIGTERM'), { code: 0, signal: null });
  t.ok((await ipLinks(nodes[0]!.ns)).some((l) => l.ifname === 'vx-ov'), 'stopping leaves the links in place');
  await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: vxlanName });
  const again = await startAgent(t, { cluster, netns: nodes[0]!.ns, env: { NODE_NAME: nodes[0]!.name, OVERLAYS: 'true', SHAPING: 'false' } });
  await again.ready();
  await eventually(async () => {
    if ((await ipLinks(nodes[0]!.ns)).some((l) => l.ifname === 'vx-ov')) throw new Error('vx-ov still there');
  }, 20_000);
  t.ok((await ipLinks(nodes[0]!.ns)).some((l) => l.ifname === 'br-ov'), 'the bridge, still wanted, is adopted');
  t.equal(await again.metric('nodenet_overlay_links', { ready: 'true' }), 2, 'uplink and bridge ready after the restart');

  // The uninstall path: with the agent stopped, nodenet cleanup takes nodenet's links and leaves eth0.
  await nodes[1]!.agent.stop('SIGTERM');
  const cleanup = await runNodenet(['cleanup', '--netns', nodes[1]!.ns.path], { NODENET_LOCK_FILE: lockFileFor(t) });
  t.equal(cleanup.code, 0, cleanup.stderr);
  t.match(cleanup.stdout, /^links overlays:\n  removed bridge br-ov\n/m, 'cleanup names the bridge it removed');
  t.same((await ipLinks(nodes[1]!.ns)).filter((l) => (l.ifalias ?? '').startsWith('nodenet:')), [], 'no nodenet link left');
  t.ok((await ipLinks(nodes[1]!.ns)).some((l) => l.ifname === 'eth0'), 'eth0 untouched');
});

t.test('learning off: each node points a per-MAC entry at the other\'s VXLAN device, and pods still talk', async (t) => {
  const k = await kubeFixture(t, cluster);
  const fab = await fabric(t);
  const nodes = [await simNode(t, k, fab, 31), await simNode(t, k, fab, 32)];
  await Promise.all(nodes.map((n) => n.agent.ready()));
  const objects = linkObjects(k.namespace);
  const vx = objects[2]! as { spec: { vxlan: Record<string, unknown> } };
  vx.spec.vxlan = { ...vx.spec.vxlan, learning: false };
  t.teardown(async () => {
    for (const o of objects) await custom.deleteClusterCustomObject({ ...GROUP, plural: 'links', name: o.metadata.name }).catch(() => undefined);
  });
  for (const o of objects) await custom.createClusterCustomObject({ ...GROUP, plural: 'links', body: o });

  const macOf = async (n: SimNode) => (JSON.parse(await n.ns.exec('ip', ['-j', 'link', 'show', 'vx-ov'])) as Array<{ address: string }>)[0]!.address;
  for (const [self, other] of [[nodes[0]!, nodes[1]!], [nodes[1]!, nodes[0]!]] as const) {
    await eventually(async () => {
      const entries = JSON.parse(await self.ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', 'vx-ov'])) as Array<{ mac: string; dst?: string; state?: string }>;
      const otherMac = await macOf(other);
      if (!entries.some((e) => e.mac === otherMac && e.dst === other.ip && e.state === 'permanent')) throw new Error(`${self.name}: no entry for ${otherMac} via ${other.ip}: ${JSON.stringify(entries)}`);
      if (!entries.some((e) => e.mac === '00:00:00:00:00:00' && e.dst === other.ip)) throw new Error(`${self.name}: no all-zero entry`);
    }, 30_000);
  }
  t.pass("each node's FDB names the other's VXLAN MAC (derived, never read from the other node) via its InternalIP");
  const info = JSON.parse(await nodes[0]!.ns.exec('ip', ['-d', '-j', 'link', 'show', 'vx-ov'])) as Array<{ linkinfo: { info_data: { learning?: boolean } } }>;
  t.equal(info[0]!.linkinfo.info_data.learning, false, 'learning is off');
  for (const n of nodes) await attachPod(t, n);
  t.ok(await ping(nodes[0]!.pod!, nodes[1]!.podIP), 'pods reach each other (unknown unicast goes to the all-zero entries)');
});
