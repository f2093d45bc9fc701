// `kubectl apply --dry-run=server` sends a DaemonSet and its RBAC through the apiserver's full
// admission and validation, and nothing is stored.
import t from 'tap';

import { AppsV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { expectApiError, kubeFixture } from '../helpers/kube.js';

const cluster = await startCluster(t);

function manifest(namespace: string, name: string, templateApp = name): string {
  return `
apiVersion: v1
kind: ServiceAccount
metadata: {name: ${name}, namespace: ${namespace}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${name}}
rules:
- apiGroups: [""]
  resources: [services, nodes, pods]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${name}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${name}}
subjects:
- {kind: ServiceAccount, name: ${name}, namespace: ${namespace}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${templateApp}}
    spec:
      serviceAccountName: ${name}
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
      - name: agent
        image: registry.invalid/nodenet:0
        securityContext:
          privileged: true
          capabilities: {add: [NET_ADMIN, SYS_ADMIN]}
`;
}

t.test('a valid DaemonSet and RBAC pass a server dry run and are not stored', async (t) => {
  const k = await kubeFixture(t, cluster);
  const name = `${k.namespace}-agent`;
  const out = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], manifest(k.namespace, name));
  t.same(
    out.trim().split('\n').sort(),
    [
      `clusterrole.rbac.authorization.k8s.io/${name} created (server dry run)`,
      `clusterrolebinding.rbac.authorization.k8s.io/${name} created (server dry run)`,
      `daemonset.apps/${name} created (server dry run)`,
      `serviceaccount/${name} created (server dry run)`,
    ],
    'every object was accepted by the server',
  );

  const json = await cluster.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], manifest(k.namespace, name));
  const rendered = JSON.parse(json) as {
    items: Array<{
      kind: string;
      metadata: { uid?: string };
      spec?: { updateStrategy?: { type?: string }; revisionHistoryLimit?: number };
    }>;
  };
  const ds = rendered.items.find((i) => i.kind === 'DaemonSet');
  t.equal(ds?.spec?.updateStrategy?.type, 'RollingUpdate', 'the server filled in defaults');
  t.equal(ds?.spec?.revisionHistoryLimit, 10);
  t.ok(ds?.metadata.uid, 'and assigned a uid, as for a real create');

  const apps = cluster.kc.makeApiClient(AppsV1Api);
  const rbac = cluster.kc.makeApiClient(RbacAuthorizationV1Api);
  const gone = await Promise.all([
    expectApiError(apps.readNamespacedDaemonSet({ name, namespace: k.namespace })),
    expectApiError(k.core.readNamespacedServiceAccount({ name, namespace: k.namespace })),
    expectApiError(rbac.readClusterRole({ name })),
    expectApiError(rbac.readClusterRoleBinding({ name })),
  ]);
  t.same(gone.map((s) => s.code), [404, 404, 404, 404], 'nothing was persisted');
});

t.test('the server, not kubectl, rejects a DaemonSet whose selector misses its template', async (t) => {
  const k = await kubeFixture(t, cluster);
  const name = `${k.namespace}-agent`;
  const result = await cluster.kubectlAllowingFailure(['apply', '--dry-run=server', '-f', '-'], manifest(k.namespace, name, 'other'));
  t.not(result.code, 0, 'kubectl fails');
  t.match(result.stderr, `The DaemonSet "${name}" is invalid: spec.template.metadata.labels: Invalid value`);
  t.match(result.stderr, '`selector` does not match template `labels`');
});
