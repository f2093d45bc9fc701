// deploy/crds/ on a real API server: the Link and NodeNetworkStatus CRDs install, take the
// examples a user would write (with the defaults filled in), refuse bad input at admission with a
// message that names the field, prune unknown fields, keep status apart from spec, show their
// printer columns, and merge a node's per-Link status by Link name on a server-side apply.
import { join } from 'node:path';

import t from 'tap';

import { ApiextensionsV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

import type { LinkResource, LinkSpec, NodeNetworkStatusResource } from '../../lib/model/overlays/types.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { eventually, expectApiError, kubeFixture } from '../helpers/kube.js';

const cluster = await startCluster(t);

const crds = join(repoRoot, 'deploy', 'crds');
const group = 'nodenet.io';
const version = 'v1alpha1';
const links = { group, version, plural: 'links' };
const statuses = { group, version, plural: 'nodenetworkstatuses' };
const objects = cluster.kc.makeApiClient(CustomObjectsApi);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const serverSideApply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

const link = (name: string, spec: LinkSpec | Record<string, unknown>) => ({ apiVersion: `${group}/${version}`, kind: 'Link', metadata: { name }, spec });

/** Creates a Link, deleted in `t`'s teardown. */
async function createLink(t: { teardown(fn: () => unknown): void }, name: string, spec: LinkSpec | Record<string, unknown>, options: { fieldValidation?: string } = {}) {
  const created = (await objects.createClusterCustomObject({ ...links, body: link(name, spec), ...options })) as LinkResource;
  t.teardown(() => objects.deleteClusterCustomObject({ ...links, name }));
  return created;
}

const mesh: LinkSpec = { interfaceName: 'vx-mesh', master: 'ov-bridge', vxlan: { vni: 42, underlay: 'uplink', peers: { mesh: {} } } };

t.test('kubectl apply --dry-run=server -f deploy/crds/ passes and stores nothing', async (t) => {
  const out = await cluster.kubectl(['apply', '--dry-run=server', '-f', crds]);
  t.same(out.trim().split('\n').sort(), [
    'customresourcedefinition.apiextensions.k8s.io/links.nodenet.io created (server dry run)',
    'customresourcedefinition.apiextensions.k8s.io/nodenetworkstatuses.nodenet.io created (server dry run)',
  ]);
  t.equal((await cluster.kubectlAllowingFailure(['get', 'crd', 'links.nodenet.io'])).code, 1, 'nothing was stored');
});

t.test('the CRDs install and become Established', async (t) => {
  await cluster.kubectl(['apply', '-f', crds]);
  const extensions = cluster.kc.makeApiClient(ApiextensionsV1Api);
  for (const name of ['links.nodenet.io', 'nodenetworkstatuses.nodenet.io']) {
    const live = await eventually(async () => {
      const crd = await extensions.readCustomResourceDefinition({ name });
      if (!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) throw new Error(`${name} not established yet`);
      return crd;
    });
    t.equal(live.spec.scope, 'Cluster', `${name} is cluster-scoped`);
    t.match(live.status?.conditions, [{ type: 'NamesAccepted', status: 'True' }], `${name}'s names are accepted`);
  }
  const resources = await cluster.kubectl(['api-resources', '--api-group=nodenet.io', '--no-headers']);
  t.match(resources, /^links\s+nnlink\s+nodenet\.io\/v1alpha1\s+false\s+Link$/m, 'links, short name nnlink, not namespaced');
  t.match(resources, /^nodenetworkstatuses\s+nnstatus\s+nodenet\.io\/v1alpha1\s+false\s+NodeNetworkStatus$/m, 'nodenetworkstatuses, short name nnstatus, not namespaced');
});

t.test('deploy/samples/overlay-links.yaml passes a server-side dry run', async (t) => {
  const out = await cluster.kubectl(['apply', '--dry-run=server', '-f', join(repoRoot, 'deploy', 'samples', 'overlay-links.yaml')]);
  t.same(out.trim().split('\n').sort(), [
    'link.nodenet.io/overlay-bridge created (server dry run)',
    'link.nodenet.io/overlay-uplink created (server dry run)',
    'link.nodenet.io/overlay-vxlan created (server dry run)',
  ]);
});

t.test('valid Links are accepted, with the defaults filled in', async (t) => {
  const bridge = await createLink(t, 'ov-bridge', { interfaceName: 'br-ov', bridge: { stp: true }, mtu: 1450 });
  t.same(bridge.spec, { interfaceName: 'br-ov', bridge: { stp: true }, mtu: 1450 });

  const device = await createLink(t, 'uplink', {
    interfaceName: 'eth0',
    device: {},
    nodeSelector: {
      matchLabels: { overlay: 'on' },
      matchExpressions: [
        { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] },
        { key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' },
      ],
    },
  });
  t.same(device.spec.device, {}, 'an empty device object is kept: it is what says "device"');

  const vxlan = await createLink(t, 'ov-mesh', mesh);
  t.same(
    vxlan.spec.vxlan,
    { vni: 42, port: 4789, learning: true, underlay: 'uplink', peers: { mesh: { addressFamily: 'IPv4' } } },
    'a mesh VXLAN: port 4789, learning on, mesh over IPv4',
  );

  const multicast = await createLink(t, 'ov-mcast', {
    interfaceName: 'vx-mc',
    mtu: 1400,
    vxlan: { vni: 16777215, underlay: 'uplink', local: '192.168.77.1', ttl: 5, tos: 0, sourcePortRange: { min: 40000, max: 40000 }, peers: { remote: { address: '239.1.1.1' } } },
  });
  t.same(multicast.spec.vxlan, {
    vni: 16777215,
    port: 4789,
    learning: true,
    underlay: 'uplink',
    local: '192.168.77.1',
    ttl: 5,
    tos: 0,
    sourcePortRange: { min: 40000, max: 40000 },
    peers: { remote: { address: '239.1.1.1' } },
  }, 'a remote multicast group; a one-port range is a range');

  const v6 = await createLink(t, 'ov-v6', { interfaceName: 'vx6', vxlan: { vni: 6, port: 8472, learning: false, underlay: 'uplink', local: 'fd00::1', peers: { mesh: { addressFamily: 'IPv6' } } } });
  t.match(v6.spec.vxlan, { port: 8472, learning: false, local: 'fd00::1' }, 'explicit values are kept');

  const table = await cluster.kubectl(['get', 'links.nodenet.io']);
  const rows = table.trim().split('\n').map((l) => l.trim().split(/\s+/));
  t.same(rows[0], ['NAME', 'INTERFACE', 'VNI', 'MASTER', 'UNDERLAY', 'AGE'], 'printer columns');
  t.match(rows.find((r) => r[0] === 'ov-mesh'), ['ov-mesh', 'vx-mesh', '42', 'ov-bridge', 'uplink', /^\d+s$/], 'a VXLAN shows its VNI, master and underlay');
  t.match(rows.find((r) => r[0] === 'uplink'), ['uplink', 'eth0', /^\d+s$/], 'a device has no VNI, master or underlay');
  t.match(await cluster.kubectl(['get', 'nnlink', 'ov-bridge', '-o', 'name']), 'link.nodenet.io/ov-bridge', 'the short name works');
});

// Each case is one mistake in an otherwise valid Link; the API server must name that field.
const invalid: Array<[string, Record<string, unknown>, string]> = [
  ['an interface name of 16 characters', { interfaceName: 'a123456789abcdef', bridge: {} }, 'spec.interfaceName: Too long: may not be more than 15 bytes'],
  ['an interface name with "/"', { interfaceName: 'br/ov', bridge: {} }, `spec.interfaceName: Invalid value: "string": interfaceName must not contain '/', ':' or whitespace`],
  ['an interface name with ":"', { interfaceName: 'eth0:1', device: {} }, `spec.interfaceName: Invalid value: "string": interfaceName must not contain '/', ':' or whitespace`],
  ['an interface name with a vertical tab', { interfaceName: 'br\u000bov', bridge: {} }, `interfaceName must not contain '/', ':' or whitespace`],
  ['the interface name ".."', { interfaceName: '..', bridge: {} }, `spec.interfaceName: Invalid value: "string": interfaceName must not be '.' or '..'`],
  ['an interface name of 15 characters but 16 bytes', { interfaceName: 'éabcdefghijklmn', bridge: {} }, 'spec.interfaceName: Invalid value: "string": interfaceName must be at most 15 bytes long'],
  ['an empty interface name', { interfaceName: '', bridge: {} }, 'spec.interfaceName: Invalid value: "": spec.interfaceName in body should be at least 1 chars long'],
  ['no interface name', { bridge: {} }, 'spec.interfaceName: Required value'],
  ['VNI 0', { ...mesh, vxlan: { ...mesh.vxlan, vni: 0 } }, 'spec.vxlan.vni: Invalid value: 0: spec.vxlan.vni in body should be greater than or equal to 1'],
  ['VNI 16777216', { ...mesh, vxlan: { ...mesh.vxlan, vni: 16777216 } }, 'spec.vxlan.vni: Invalid value: 16777216: spec.vxlan.vni in body should be less than or equal to 16777215'],
  ['port 0', { ...mesh, vxlan: { ...mesh.vxlan, port: 0 } }, 'spec.vxlan.port: Invalid value: 0: spec.vxlan.port in body should be greater than or equal to 1'],
  ['a source port range with min > max', { ...mesh, vxlan: { ...mesh.vxlan, sourcePortRange: { min: 50000, max: 40000 } } }, 'spec.vxlan.sourcePortRange: Invalid value: "object": sourcePortRange.min must not be greater than sourcePortRange.max'],
  ['MTU 67', { ...mesh, mtu: 67 }, 'spec.mtu: Invalid value: 67: spec.mtu in body should be greater than or equal to 68'],
  ['MTU 65536', { ...mesh, mtu: 65536 }, 'spec.mtu: Invalid value: 65536: spec.mtu in body should be less than or equal to 65535'],
  ['a bad local address', { ...mesh, vxlan: { ...mesh.vxlan, local: '192.168.1' } }, 'spec.vxlan.local: Invalid value: "string": local must be an IPv4 or IPv6 address'],
  ['a bad remote address', { ...mesh, vxlan: { ...mesh.vxlan, peers: { remote: { address: '239.1.1.256' } } } }, 'spec.vxlan.peers.remote.address: Invalid value: "string": remote.address must be an IPv4 or IPv6 address'],
  ['local and remote of different families', { ...mesh, vxlan: { ...mesh.vxlan, local: 'fd00::1', peers: { remote: { address: '239.1.1.1' } } } }, 'spec.vxlan.local: Invalid value: "object": local and peers.remote.address must be of the same address family'],
  ['an IPv6 local on an IPv4 mesh', { ...mesh, vxlan: { ...mesh.vxlan, local: 'fd00::1' } }, `spec.vxlan.local: Invalid value: "object": local must be of the mesh's addressFamily (default IPv4)`],
  ['both remote and mesh', { ...mesh, vxlan: { ...mesh.vxlan, peers: { mesh: {}, remote: { address: '10.0.0.2' } } } }, 'spec.vxlan.peers: Invalid value: "object": exactly one of remote, mesh must be set'],
  ['neither remote nor mesh', { ...mesh, vxlan: { ...mesh.vxlan, peers: {} } }, 'spec.vxlan.peers: Invalid value: "object": exactly one of remote, mesh must be set'],
  ['a VXLAN without an underlay', { ...mesh, vxlan: { vni: 1, peers: { mesh: {} } } }, 'spec.vxlan.underlay: Required value'],
  ['two link types at once', { interfaceName: 'br-ov', bridge: {}, device: {} }, 'spec: Invalid value: "object": exactly one of bridge, vxlan, device must be set'],
  ['no link type at all', { interfaceName: 'br-ov' }, 'spec: Invalid value: "object": exactly one of bridge, vxlan, device must be set'],
  ['a master on a device Link', { interfaceName: 'eth0', device: {}, master: 'ov-bridge' }, 'spec.master: Invalid value: "object": master is allowed only on a vxlan Link'],
  ['a master on a bridge Link', { interfaceName: 'br-in', bridge: {}, master: 'ov-bridge' }, 'spec.master: Invalid value: "object": master is allowed only on a vxlan Link'],
  ['a master that is not a Link name', { ...mesh, master: 'Br_Ov' }, `spec.master: Invalid value: "Br_Ov": spec.master in body should match '^[a-z0-9]`],
  ['itself as master', { ...mesh, master: 'bad-link' }, 'spec.master: Invalid value: "object": spec.master must name another Link, not this one'],
  ['itself as underlay', { ...mesh, vxlan: { ...mesh.vxlan, underlay: 'bad-link' } }, 'spec.vxlan.underlay: Invalid value: "object": spec.vxlan.underlay must name another Link, not this one'],
  ['an In expression without values', { ...mesh, nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In' }] } }, 'spec.nodeSelector.matchExpressions[0].values: Invalid value: "object": values must be non-empty when operator is In or NotIn'],
  ['a NotIn expression with empty values', { ...mesh, nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: [] }] } }, 'spec.nodeSelector.matchExpressions[0].values: Invalid value: "object": values must be non-empty when operator is In or NotIn'],
  ['an Exists expression with values', { ...mesh, nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'Exists', values: ['a'] }] } }, 'spec.nodeSelector.matchExpressions[0].values: Invalid value: "object": values must be empty when operator is Exists or DoesNotExist'],
  ['an unknown operator', { ...mesh, nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'Near', values: ['a'] }] } }, 'spec.nodeSelector.matchExpressions[0].operator: Unsupported value: "Near": supported values: "In", "NotIn", "Exists", "DoesNotExist"'],
  ['an unknown mesh address family', { ...mesh, vxlan: { ...mesh.vxlan, peers: { mesh: { addressFamily: 'IPv5' } } } }, 'spec.vxlan.peers.mesh.addressFamily: Unsupported value: "IPv5": supported values: "IPv4", "IPv6"'],
  ['TTL 0', { ...mesh, vxlan: { ...mesh.vxlan, ttl: 0 } }, 'spec.vxlan.ttl: Invalid value: 0: spec.vxlan.ttl in body should be greater than or equal to 1'],
  ['TOS 256', { ...mesh, vxlan: { ...mesh.vxlan, tos: 256 } }, 'spec.vxlan.tos: Invalid value: 256: spec.vxlan.tos in body should be less than or equal to 255'],
];

t.test('bad Links are refused at admission, naming the field', async (t) => {
  for (const [what, spec, message] of invalid) {
    const refused = await expectApiError(objects.createClusterCustomObject({ ...links, body: link('bad-link', spec) }));
    t.equal(refused.code, 422, `${what}: 422`);
    t.equal(refused.reason, 'Invalid');
    t.match(refused.message, `Link.nodenet.io "bad-link" is invalid: `);
    t.match(refused.message, message, what);
  }
  // The kernel's own limit is bytes; 15 ASCII characters are fine.
  await createLink(t, 'longest-name', { interfaceName: 'a123456789abcde', bridge: {} });
  t.pass('15 characters are accepted');
});

t.test('the rules hold on update too', async (t) => {
  await createLink(t, 'ov-mesh', mesh);
  const refused = await expectApiError(objects.patchClusterCustomObject({ ...links, name: 'ov-mesh', body: { spec: { device: {} } } }, mergePatch));
  t.match(refused.message, 'spec: Invalid value: "object": exactly one of bridge, vxlan, device must be set');
  const swapped = (await objects.patchClusterCustomObject(
    { ...links, name: 'ov-mesh', body: { spec: { vxlan: { peers: { mesh: null, remote: { address: '10.0.0.2' } } } } } },
    mergePatch,
  )) as LinkResource;
  t.same(swapped.spec.vxlan?.peers, { remote: { address: '10.0.0.2' } }, 'replacing the peers in one patch is fine');
});

t.test('unknown fields are pruned, not refused (and refused when the client asks for strict validation)', async (t) => {
  const created = await createLink(t, 'pruned', { interfaceName: 'br-p', bridge: { stp: false, hello: 2 }, colour: 'blue' });
  t.same(created.spec, { interfaceName: 'br-p', bridge: { stp: false } });
  const strict = await expectApiError(
    objects.createClusterCustomObject({ ...links, body: link('strict', { interfaceName: 'br-s', bridge: {}, colour: 'blue' }), fieldValidation: 'Strict' }),
  );
  t.equal(strict.code, 400);
  t.match(strict.message, 'unknown field "spec.colour"');
});

t.test('status is a subresource: spec and status are written apart', async (t) => {
  const created = (await objects.createClusterCustomObject({
    ...links,
    body: { ...link('ov-bridge', { interfaceName: 'br-ov', bridge: {} }), status: { observedGeneration: 9 } },
  })) as LinkResource;
  t.teardown(() => objects.deleteClusterCustomObject({ ...links, name: 'ov-bridge' }));
  t.equal(created.status, undefined, 'status given on create is dropped');

  const condition = { type: 'Ready', status: 'True', reason: 'Applied', message: '', observedGeneration: 1, lastTransitionTime: '2025-01-01T00:00:00Z' };
  const withStatus = (await objects.patchClusterCustomObjectStatus(
    { ...links, name: 'ov-bridge', body: { spec: { interfaceName: 'br-other' }, status: { observedGeneration: 1, conditions: [condition] } } },
    mergePatch,
  )) as LinkResource;
  t.same(withStatus.status, { observedGeneration: 1, conditions: [condition] }, 'status is written through /status');
  t.equal(withStatus.spec.interfaceName, 'br-ov', 'a status update cannot change spec');
  t.equal(withStatus.metadata.generation, 1, 'nor the generation');

  const updated = (await objects.patchClusterCustomObject(
    { ...links, name: 'ov-bridge', body: { spec: { mtu: 1400 }, status: { observedGeneration: 7, conditions: [] } } },
    mergePatch,
  )) as LinkResource;
  t.equal(updated.spec.mtu, 1400, 'spec changes through the main resource');
  t.equal(updated.metadata.generation, 2, 'and bumps the generation');
  t.same(updated.status, { observedGeneration: 1, conditions: [condition] }, 'a spec update cannot set status');

  const badStatus = await expectApiError(
    objects.patchClusterCustomObjectStatus({ ...links, name: 'ov-bridge', body: { status: { conditions: [{ ...condition, status: 'Maybe' }] } } }, mergePatch),
  );
  t.match(badStatus.message, 'status.conditions[0].status: Unsupported value: "Maybe": supported values: "True", "False", "Unknown"', 'status is validated too');
});

t.test('a NodeNetworkStatus owned by its Node merges per Link on server-side apply', async (t) => {
  const k = await kubeFixture(t, cluster);
  const node = await k.createNode({ name: `${k.namespace}-node`.slice(0, 63), internalIPs: ['192.168.77.1'] });
  const name = node.metadata!.name!;
  const owner = { apiVersion: 'v1', kind: 'Node', name, uid: node.metadata!.uid! };
  const created = (await objects.createClusterCustomObject({
    ...statuses,
    body: { apiVersion: `${group}/${version}`, kind: 'NodeNetworkStatus', metadata: { name, ownerReferences: [owner] } },
  })) as NodeNetworkStatusResource;
  t.teardown(() => objects.deleteClusterCustomObject({ ...statuses, name }));
  t.match(created.metadata.ownerReferences, [owner], 'accepted with an ownerReference to the Node');

  const ready = (link: string, status: 'True' | 'False', reason: string, message = '') => ({
    name: link,
    interfaceName: link === 'ov-bridge' ? 'br-ov' : 'vx-mesh',
    conditions: [{ type: 'Ready', status, reason, message, observedGeneration: 1, lastTransitionTime: '2025-01-01T00:00:00Z' }],
  });
  const apply = (fieldManager: string, status: Record<string, unknown>) =>
    objects.patchClusterCustomObjectStatus(
      { ...statuses, name, fieldManager, force: true, body: { apiVersion: `${group}/${version}`, kind: 'NodeNetworkStatus', metadata: { name }, status } },
      serverSideApply,
    ) as Promise<NodeNetworkStatusResource>;

  await apply('bridges', { links: [ready('ov-bridge', 'True', 'Ready')], summary: '1/1 ready', observedAt: '2025-01-01T00:00:00Z' });
  const both = await apply('tunnels', { links: [ready('ov-mesh', 'False', 'UnderlayNotFound', 'underlay interface eth0 does not exist')] });
  t.same(both.status?.links?.map((l) => l.name), ['ov-bridge', 'ov-mesh'], 'entries applied by two managers merge by Link name');
  const fixed = await apply('tunnels', { links: [ready('ov-mesh', 'True', 'Ready')] });
  t.same(
    fixed.status?.links?.map((l) => [l.name, l.conditions?.[0]?.status]),
    [
      ['ov-bridge', 'True'],
      ['ov-mesh', 'True'],
    ],
    're-applying one entry replaces that entry only',
  );
  const dropped = await apply('tunnels', { links: [] });
  t.same(dropped.status?.links?.map((l) => l.name), ['ov-bridge'], 'and a manager dropping its entry leaves the others');
  t.equal(dropped.status?.summary, '1/1 ready');

  const duplicate = await expectApiError(
    objects.patchClusterCustomObjectStatus({ ...statuses, name, body: { status: { links: [ready('x', 'True', 'Ready'), ready('x', 'False', 'Failed')] } } }, mergePatch),
  );
  t.match(duplicate.message, 'status.links[1]: Duplicate value: map[string]interface {}{"name":"x"}', 'one entry per Link name');

  const table = await cluster.kubectl(['get', 'nnstatus', name]);
  const [header, row] = table.trim().split('\n').map((l) => l.trim().split(/\s+/));
  t.same(header, ['NAME', 'LINKS', 'OBSERVED', 'AGE']);
  t.match(row, [name, '1/1', 'ready', /^\d+[smhd]/, /^\d+s$/], 'the Links column is the agent\'s summary');
});
