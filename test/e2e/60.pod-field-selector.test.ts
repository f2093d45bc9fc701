// spec.nodeName as a field selector gives an agent only its own node's Pods, on list and on watch.
import t from 'tap';

import type { V1Pod } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { kubeFixture, watchEvents } from '../helpers/kube.js';

const cluster = await startCluster(t);

t.test('list and watch with spec.nodeName=X return only the Pods bound to X', async (t) => {
  const k = await kubeFixture(t, cluster);
  await k.createPod({ name: 'a-1', nodeName: 'node-a', podIPs: ['10.244.1.2'] });
  await k.createPod({ name: 'b-1', nodeName: 'node-b', podIPs: ['10.244.2.2'] });
  await k.createPod({ name: 'a-2', nodeName: 'node-a', podIPs: ['10.244.1.3'] });

  const all = await k.core.listNamespacedPod({ namespace: k.namespace });
  t.equal(all.items.length, 3, 'without the selector every Pod is listed');
  const onA = await k.core.listNamespacedPod({ namespace: k.namespace, fieldSelector: 'spec.nodeName=node-a' });
  t.same(onA.items.map((p) => p.metadata?.name).sort(), ['a-1', 'a-2']);
  const everywhere = await k.core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=node-b' });
  t.same(
    everywhere.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`),
    [`${k.namespace}/b-1`],
    'across all namespaces too',
  );

  const events = await watchEvents<V1Pod>(t, cluster.kc, '/api/v1/pods', {
    fieldSelector: 'spec.nodeName=node-a',
    resourceVersion: onA.metadata?.resourceVersion,
  });
  // Watch events arrive in resourceVersion order: had b-2 been let through, it would come first.
  await k.createPod({ name: 'b-2', nodeName: 'node-b', podIPs: ['10.244.2.3'] });
  await k.core.deleteNamespacedPod({ name: 'b-1', namespace: k.namespace, gracePeriodSeconds: 0 });
  await k.createPod({ name: 'a-3', nodeName: 'node-a', podIPs: ['10.244.1.4'] });
  const added = await events.next();
  t.equal(added.type, 'ADDED');
  t.equal(added.object.metadata?.name, 'a-3', 'the first event is the Pod on node-a');
  const running = await events.next();
  t.equal(running.type, 'MODIFIED');
  t.equal(running.object.status?.podIP, '10.244.1.4', 'then its status update');

  // A Pod that is created unbound and bound later enters the watch at the binding.
  await k.core.createNamespacedPod({
    namespace: k.namespace,
    body: { metadata: { name: 'late' }, spec: { containers: [{ name: 'main', image: 'registry.invalid/none:0' }] } },
  });
  await k.core.createNamespacedPodBinding({
    name: 'late',
    namespace: k.namespace,
    body: { metadata: { name: 'late' }, target: { kind: 'Node', name: 'node-a' } },
  });
  const bound = await events.next();
  t.equal(bound.object.metadata?.name, 'late');
  t.equal(bound.type, 'ADDED', 'a Pod newly matching the selector is ADDED');
  t.same(events.pending(), [], 'nothing from node-b');
});
