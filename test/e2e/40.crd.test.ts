// A CRD with a structural schema is enforced by the apiserver: OpenAPI bounds and patterns, a CEL
// rule, pruning of unknown fields, and a status subresource kept apart from spec.
import t from 'tap';

import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { eventually, expectApiError, kubeFixture } from '../helpers/kube.js';

const cluster = await startCluster(t);

const group = 'test.nodenet.io';
const version = 'v1alpha1';
const plural = 'widgets';

const crd: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { plural, singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
    versions: [
      {
        name: version,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['name', 'port'],
                properties: {
                  name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$', maxLength: 20 },
                  port: { type: 'integer', minimum: 1, maximum: 65535 },
                  minReplicas: { type: 'integer', minimum: 0 },
                  maxReplicas: { type: 'integer', minimum: 0 },
                },
                x_kubernetes_validations: [
                  {
                    rule: '!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas',
                    message: 'minReplicas must not exceed maxReplicas',
                  },
                ],
              },
              status: {
                type: 'object',
                properties: {
                  phase: { type: 'string', _enum: ['Pending', 'Ready'] },
                  observedPort: { type: 'integer' },
                },
              },
            },
          },
        },
      },
    ],
  },
};

type Widget = {
  metadata: { name: string; resourceVersion?: string };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
};

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

t.test('a structural CRD validates, prunes, and separates status', async (t) => {
  const k = await kubeFixture(t, cluster);
  const extensions = cluster.kc.makeApiClient(ApiextensionsV1Api);
  const objects = cluster.kc.makeApiClient(CustomObjectsApi);
  t.teardown(() => extensions.deleteCustomResourceDefinition({ name: crd.metadata!.name! }));
  await extensions.createCustomResourceDefinition({ body: crd });
  await eventually(async () => {
    const live = await extensions.readCustomResourceDefinition({ name: crd.metadata!.name! });
    if (!live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) throw new Error('not established yet');
  });
  const at = { group, version, plural, namespace: k.namespace };
  const create = (body: object) => objects.createNamespacedCustomObject({ ...at, body }) as Promise<Widget>;
  const widget = (name: string, spec: Record<string, unknown>, extra: object = {}) => ({
    apiVersion: `${group}/${version}`,
    kind: 'Widget',
    metadata: { name },
    spec,
    ...extra,
  });

  const invalid = await expectApiError(create(widget('bad', { name: 'Not_Valid', port: 70000, minReplicas: 5, maxReplicas: 2 })));
  t.equal(invalid.code, 422);
  t.equal(invalid.reason, 'Invalid');
  t.match(invalid.message, 'Widget.test.nodenet.io "bad" is invalid');
  t.match(invalid.message, 'spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535');
  t.match(invalid.message, /spec\.name: Invalid value: "Not_Valid": spec\.name in body should match '\^\[a-z\]/);
  t.match(invalid.message, 'spec: Invalid value: "object": minReplicas must not exceed maxReplicas');
  const missing = await expectApiError(create(widget('empty', { port: 80 })));
  t.match(missing.message, 'spec.name: Required value', 'required fields are enforced');

  const created = await create(
    widget('good', { name: 'web', port: 8080, minReplicas: 1, maxReplicas: 3, unknown: 'dropped' }, { status: { phase: 'Ready' } }),
  );
  t.same(created.spec, { name: 'web', port: 8080, minReplicas: 1, maxReplicas: 3 }, 'accepted, with the unknown field pruned');
  t.equal(created.status, undefined, 'status given on create is ignored: it belongs to the status subresource');

  const withStatus = (await objects.patchNamespacedCustomObjectStatus(
    { ...at, name: 'good', body: { status: { phase: 'Ready', observedPort: 8080 }, spec: { port: 1 } } },
    mergePatch,
  )) as Widget;
  t.same(withStatus.status, { phase: 'Ready', observedPort: 8080 }, 'status is written through /status');
  t.equal(withStatus.spec.port, 8080, 'and spec sent to /status is ignored');

  const badStatus = await expectApiError(
    objects.patchNamespacedCustomObjectStatus({ ...at, name: 'good', body: { status: { phase: 'Exploded' } } }, mergePatch),
  );
  t.equal(badStatus.code, 422, 'status is validated against the schema too');
  t.match(badStatus.message, 'status.phase: Unsupported value: "Exploded"');

  const updated = (await objects.patchNamespacedCustomObject(
    { ...at, name: 'good', body: { spec: { port: 9090 }, status: { phase: 'Pending' } } },
    mergePatch,
  )) as Widget;
  t.equal(updated.spec.port, 9090, 'spec changes through the main resource');
  t.same(updated.status, { phase: 'Ready', observedPort: 8080 }, 'status sent to the main resource is ignored');

  const tooMany = await expectApiError(
    objects.patchNamespacedCustomObject({ ...at, name: 'good', body: { spec: { minReplicas: 4 } } }, mergePatch),
  );
  t.match(tooMany.message, 'minReplicas must not exceed maxReplicas', 'the CEL rule holds on update');
});
