// What the kube fixture writes in place of kubelets and controllers reads back as written.
import t from 'tap';

import { CoreV1Api } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { kubeFixture, uniqueName } from '../helpers/kube.js';

const cluster = await startCluster(t);

t.test('a Node with pod CIDRs, addresses, labels and a Ready condition', async (t) => {
  const k = await kubeFixture(t, cluster);
  const name = `${k.namespace}-node`;
  await k.createNode({
    name,
    podCIDRs: ['10.244.7.0/24', 'fd00:10:244:7::/64'],
    internalIPs: ['192.168.50.7', 'fd00:50::7'],
    externalIPs: ['203.0.113.7'],
    labels: { 'topology.kubernetes.io/zone': 'z1' },
  });
  const node = await k.core.readNode({ name });
  t.equal(node.spec?.podCIDR, '10.244.7.0/24');
  t.same(node.spec?.podCIDRs, ['10.244.7.0/24', 'fd00:10:244:7::/64']);
  t.same(node.status?.addresses, [
    { type: 'InternalIP', address: '192.168.50.7' },
    { type: 'InternalIP', address: 'fd00:50::7' },
    { type: 'ExternalIP', address: '203.0.113.7' },
    { type: 'Hostname', address: name },
  ]);
  t.equal(node.metadata?.labels?.['topology.kubernetes.io/zone'], 'z1');
  t.equal(node.metadata?.labels?.['kubernetes.io/hostname'], name);
  t.match(node.status?.conditions, [{ type: 'Ready', status: 'True' }]);

  const notReady = `${k.namespace}-down`;
  await k.createNode({ name: notReady, ready: false });
  t.match((await k.core.readNode({ name: notReady })).status?.conditions, [{ type: 'Ready', status: 'False' }]);
});

t.test('Services of each type, and load balancer status with ipMode', async (t) => {
  const k = await kubeFixture(t, cluster);
  const plain = await k.createService({ name: 'plain' });
  t.equal(plain.spec?.type, 'ClusterIP');
  t.same(plain.spec?.ports?.map((p) => [p.name, p.port, p.protocol, p.targetPort]), [['http', 80, 'TCP', 8080]]);
  t.notOk(plain.spec?.ports?.[0]?.nodePort);

  const nodePort = await k.createService({
    name: 'np',
    type: 'NodePort',
    ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }],
  });
  t.equal(nodePort.spec?.ports?.[0]?.nodePort, 30053, 'a requested node port is kept');

  const dual = await k.createService({ name: 'dual', spec: { ipFamilyPolicy: 'RequireDualStack' } });
  t.same(dual.spec?.ipFamilies, ['IPv4', 'IPv6'], 'the cluster is dual-stack');
  t.match(dual.spec?.clusterIPs, [/^10\.96\./, /^fd00:10:96::/]);

  const lb = await k.createService({ name: 'lb', type: 'LoadBalancer', spec: { externalTrafficPolicy: 'Local' } });
  t.ok(lb.spec?.ports?.[0]?.nodePort, 'a LoadBalancer gets node ports by default');
  t.ok(lb.spec?.healthCheckNodePort, 'and a health check node port with externalTrafficPolicy Local');
  const bare = await k.createService({ name: 'bare', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  t.notOk(bare.spec?.ports?.[0]?.nodePort, 'allocateLoadBalancerNodePorts: false allocates none');

  await k.setLoadBalancerIngress('lb', [
    { ip: '203.0.113.10', ipMode: 'VIP' },
    { ip: '2001:db8::10', ipMode: 'Proxy' },
  ]);
  const live = await k.core.readNamespacedService({ name: 'lb', namespace: k.namespace });
  t.same(live.status?.loadBalancer?.ingress, [
    { ip: '203.0.113.10', ipMode: 'VIP' },
    { ip: '2001:db8::10', ipMode: 'Proxy' },
  ]);
  await k.setLoadBalancerIngress('lb', [{ ip: '203.0.113.11' }]);
  t.same(
    (await k.core.readNamespacedService({ name: 'lb', namespace: k.namespace })).status?.loadBalancer?.ingress,
    [{ ip: '203.0.113.11', ipMode: 'VIP' }],
    'the ingress list is replaced, and ipMode defaults to VIP',
  );
});

t.test('an EndpointSlice for a Service', async (t) => {
  const k = await kubeFixture(t, cluster);
  await k.createService({ name: 'web' });
  const created = await k.createEndpointSlice({
    service: 'web',
    endpoints: [
      { addresses: ['10.244.1.5'], nodeName: 'node-a', zone: 'z1' },
      { addresses: ['10.244.2.5'], nodeName: 'node-b', ready: false, serving: true, terminating: true },
    ],
  });
  t.match(created.metadata?.name, /^web-[a-z0-9]{5}$/, 'named like the controller names them');
  const slices = await k.discovery.listNamespacedEndpointSlice({
    namespace: k.namespace,
    labelSelector: 'kubernetes.io/service-name=web',
  });
  t.equal(slices.items.length, 1, 'found by the label consumers select on');
  const slice = slices.items[0]!;
  t.equal(slice.addressType, 'IPv4');
  t.same(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  t.same(
    slice.endpoints.map((e) => [e.addresses, e.nodeName, e.zone, e.conditions]),
    [
      [['10.244.1.5'], 'node-a', 'z1', { ready: true }],
      [['10.244.2.5'], 'node-b', undefined, { ready: false, serving: true, terminating: true }],
    ],
  );
});

t.test('a Pod bound to a node and reported Running', async (t) => {
  const k = await kubeFixture(t, cluster);
  await k.createPod({
    name: 'web-1',
    nodeName: 'node-a',
    podIPs: ['10.244.1.5', 'fd00:10:244:1::5'],
    hostIPs: ['192.168.50.1'],
    labels: { app: 'web' },
  });
  const pod = await k.core.readNamespacedPod({ name: 'web-1', namespace: k.namespace });
  t.equal(pod.spec?.nodeName, 'node-a');
  t.equal(pod.status?.phase, 'Running');
  t.equal(pod.status?.podIP, '10.244.1.5');
  t.same(pod.status?.podIPs, [{ ip: '10.244.1.5' }, { ip: 'fd00:10:244:1::5' }]);
  t.equal(pod.status?.hostIP, '192.168.50.1');
  t.match(pod.status?.conditions, [{ type: 'Ready', status: 'True' }]);
  t.same(pod.metadata?.labels, { app: 'web' });
});

t.test('teardown empties and removes the namespace and the Nodes', async (t) => {
  let namespace = '';
  const node = uniqueName('left-behind');
  await t.test('a test that leaves things behind', async (t) => {
    const k = await kubeFixture(t, cluster);
    namespace = k.namespace;
    await k.createNode({ name: node });
    await k.createService({ name: 'web' });
    await k.createPod({ name: 'p', nodeName: node, podIPs: ['10.244.9.9'] });
    await k.core.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'cm' } } });
  });
  const core = cluster.kc.makeApiClient(CoreV1Api);
  const [namespaces, nodes, pods, services, configMaps] = await Promise.all([
    core.listNamespace(),
    core.listNode(),
    core.listPodForAllNamespaces(),
    core.listServiceForAllNamespaces(),
    core.listConfigMapForAllNamespaces(),
  ]);
  t.notOk(namespaces.items.some((n) => n.metadata?.name === namespace), 'the namespace is gone, not left Terminating');
  t.notOk(nodes.items.some((n) => n.metadata?.name === node), 'the Node is gone');
  t.same(
    [...pods.items, ...services.items, ...configMaps.items].filter((o) => o.metadata?.namespace === namespace),
    [],
    'nothing is left in etcd under the namespace',
  );
});
