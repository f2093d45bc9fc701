// RBAC is enforced: an impersonated ServiceAccount may do nothing until a ClusterRole is bound to it.
import t from 'tap';

import { CoreV1Api, DiscoveryV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { eventually, expectApiError, kubeFixture, watchEvents } from '../helpers/kube.js';

const cluster = await startCluster(t);

t.test('a ServiceAccount is forbidden to list Services until a ClusterRole is bound', async (t) => {
  const k = await kubeFixture(t, cluster);
  const rbac = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
  await k.core.createNamespacedServiceAccount({ namespace: k.namespace, body: { metadata: { name: 'agent' } } });
  const agent = cluster.kubeConfigAs({ serviceAccount: { namespace: k.namespace, name: 'agent' } });
  const asAgent = agent.makeApiClient(CoreV1Api);
  const user = `system:serviceaccount:${k.namespace}:agent`;

  const denied = await expectApiError(asAgent.listServiceForAllNamespaces());
  t.equal(denied.code, 403);
  t.equal(denied.reason, 'Forbidden');
  t.match(denied.message, `User "${user}" cannot list resource "services" in API group "" at the cluster scope`);

  const deniedWatch = await watchEvents(t, agent, '/api/v1/services', {});
  t.match(await deniedWatch.ended(), { statusCode: 403 }, 'a watch is refused before it starts');

  const role = `${k.namespace}-service-reader`;
  t.teardown(async () => {
    await rbac.deleteClusterRoleBinding({ name: role }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: role }).catch(() => undefined);
  });
  await rbac.createClusterRole({
    body: { metadata: { name: role }, rules: [{ apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] }] },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', namespace: k.namespace, name: 'agent' }],
    },
  });

  await k.createService({ name: 'web' });
  // The authorizer reads RBAC objects through an informer: allow it a moment to catch up.
  const listed = await eventually(() => asAgent.listServiceForAllNamespaces());
  t.ok(
    listed.items.some((s) => s.metadata?.namespace === k.namespace && s.metadata?.name === 'web'),
    'the ServiceAccount now lists Services in every namespace',
  );

  const events = await watchEvents(t, agent, `/api/v1/namespaces/${k.namespace}/services`, {
    resourceVersion: listed.metadata?.resourceVersion,
  });
  await k.createService({ name: 'api' });
  t.equal((await events.until((e) => e.type === 'ADDED')).type, 'ADDED', 'and watches them');

  const slices = await expectApiError(agent.makeApiClient(DiscoveryV1Api).listEndpointSliceForAllNamespaces());
  t.equal(slices.code, 403, 'the binding grants Services and nothing else');
  const write = await expectApiError(asAgent.deleteNamespacedService({ name: 'web', namespace: k.namespace }));
  t.equal(write.code, 403, 'nor any verb beyond get, list and watch');
});
