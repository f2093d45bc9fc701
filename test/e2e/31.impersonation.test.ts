// The impersonation helpers make requests as exactly the identity asked for: the apiserver's own
// account of who is calling (SelfSubjectReview, `kubectl auth whoami`) and RBAC decisions agree.
import t from 'tap';

import { AuthenticationV1Api, CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';

import { startCluster, type Identity } from '../helpers/cluster.js';
import { run } from '../helpers/exec.js';
import { eventually, expectApiError, kubeFixture, watchEvents } from '../helpers/kube.js';

const cluster = await startCluster(t);

async function whoAmI(who: Identity) {
  const review = await cluster.kubeConfigAs(who).makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  return { username: review.status?.userInfo?.username, groups: review.status?.userInfo?.groups };
}

t.test('the admin is in system:masters', async (t) => {
  const review = await cluster.kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  t.ok(review.status?.userInfo?.groups?.includes('system:masters'));
});

t.test('a ServiceAccount gets the groups its tokens would carry', async (t) => {
  t.same(await whoAmI({ serviceAccount: { namespace: 'kube-system', name: 'nodenet' } }), {
    username: 'system:serviceaccount:kube-system:nodenet',
    groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
  });
});

t.test('a user gets every group asked for, each as its own group', async (t) => {
  t.same(await whoAmI({ user: 'alice', groups: ['team-a', 'team-b', 'team-c'] }), {
    username: 'alice',
    groups: ['team-a', 'team-b', 'team-c', 'system:authenticated'],
  });
  t.same(await whoAmI({ user: 'bob' }), { username: 'bob', groups: ['system:authenticated'] });
});

t.test('watches carry the impersonated groups too', async (t) => {
  const k = await kubeFixture(t, cluster);
  const rbac = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
  const name = `${k.namespace}-watch-services`;
  t.teardown(async () => {
    await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
    await rbac.deleteClusterRole({ name }).catch(() => undefined);
  });
  await rbac.createClusterRole({
    body: { metadata: { name }, rules: [{ apiGroups: [''], resources: ['services'], verbs: ['list', 'watch'] }] },
  });
  // Granted to the second group only: a client that sent just the first, or both as one, fails.
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: `${k.namespace}-watchers` }],
    },
  });
  const member = cluster.kubeConfigAs({ user: 'carol', groups: [`${k.namespace}-other`, `${k.namespace}-watchers`] });
  const outsider = cluster.kubeConfigAs({ user: 'carol', groups: [`${k.namespace}-other`] });

  const list = await eventually(() => member.makeApiClient(CoreV1Api).listNamespacedService({ namespace: k.namespace }));
  const denied = await expectApiError(outsider.makeApiClient(CoreV1Api).listNamespacedService({ namespace: k.namespace }));
  t.equal(denied.code, 403, 'without the group, listing is forbidden');

  const path = `/api/v1/namespaces/${k.namespace}/services`;
  const refused = await watchEvents(t, outsider, path, { resourceVersion: list.metadata?.resourceVersion });
  t.match(await refused.ended(), { statusCode: 403 }, 'without the group, watching is forbidden');
  const events = await watchEvents(t, member, path, { resourceVersion: list.metadata?.resourceVersion });
  await k.createService({ name: 'seen' });
  const added = await events.next();
  t.equal(added.type, 'ADDED', 'with the group, the watch runs');
});

t.test('a kubeconfig file for an identity works with kubectl', async (t) => {
  const whoami = async (who: Identity) =>
    JSON.parse(await run(cluster.kubectlPath, ['--kubeconfig', cluster.kubeconfigFileAs(who), 'auth', 'whoami', '-o', 'json'])) as {
      status: { userInfo: { username: string; groups: string[] } };
    };
  const sa = await whoami({ serviceAccount: { namespace: 'default', name: 'agent' } });
  t.equal(sa.status.userInfo.username, 'system:serviceaccount:default:agent');
  t.same(sa.status.userInfo.groups, ['system:serviceaccounts', 'system:serviceaccounts:default', 'system:authenticated']);
  const user = await whoami({ user: 'dave', groups: ['g1', 'g2'] });
  t.equal(user.status.userInfo.username, 'dave');
  t.same(user.status.userInfo.groups, ['g1', 'g2', 'system:authenticated']);
});
