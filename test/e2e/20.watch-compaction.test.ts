// After etcd compacts, a watch from an older resourceVersion is told 410 Gone, and a fresh list
// gives a resourceVersion to continue from.
//
// Only requests the apiserver passes through to etcd see a compaction. Most watches are served
// from its watch cache, which keeps its own window of recent events and does not care about etcd
// compaction; by default only Events are not cached. So the 410 is provoked on Events, and the
// second test pins down that a Service watch is unaffected, so that nobody expects compaction to
// expire an agent's Service watch.
import t from 'tap';

import type { CoreV1Event, V1Service, V1Status } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { expectApiError, kubeFixture, watchEvents } from '../helpers/kube.js';

const cluster = await startCluster(t);

t.test('an Event watch from before a compaction gets 410 Expired, and a relist continues', async (t) => {
  const k = await kubeFixture(t, cluster);
  const path = `/api/v1/namespaces/${k.namespace}/events`;
  const before = await k.core.listNamespacedEvent({ namespace: k.namespace });
  const stale = before.metadata!.resourceVersion!;

  const note = (n: number) => [{ op: 'replace', path: '/message', value: `note ${n}` }];
  await k.core.createNamespacedEvent({
    namespace: k.namespace,
    body: {
      metadata: { name: 'probe' },
      involvedObject: { kind: 'Service', name: 'web', namespace: k.namespace },
      reason: 'Probe',
      message: 'note 0',
      type: 'Normal',
    },
  });
  // Two writes after `stale`: a watch from exactly the compacted revision minus one would instead
  // fail with a 500 (the event's previous value is gone), which is not what this test is about.
  await k.core.patchNamespacedEvent({ name: 'probe', namespace: k.namespace, body: note(1) });
  const compacted = await cluster.compactEtcd();
  t.ok(compacted >= Number(stale) + 2, `compacted at ${compacted}, past the stale version ${stale}`);

  const expired = await watchEvents<V1Status>(t, cluster.kc, path, { resourceVersion: stale });
  const error = await expired.next();
  t.equal(error.type, 'ERROR', 'the watch opens (HTTP 200) and reports the error as an event');
  t.equal(error.object.code, 410);
  t.equal(error.object.reason, 'Expired');
  t.match(error.object.message, /too old/);
  t.equal(await expired.ended(), null, 'then the server ends the watch');

  const relisted = await k.core.listNamespacedEvent({ namespace: k.namespace });
  const fresh = relisted.metadata!.resourceVersion!;
  t.ok(Number(fresh) >= compacted, `the new list is at ${fresh}, not before the compaction`);
  t.same(relisted.items.map((e) => e.message), ['note 1'], 'the list has the current state');

  const resumed = await watchEvents<CoreV1Event>(t, cluster.kc, path, { resourceVersion: fresh });
  await k.core.patchNamespacedEvent({ name: 'probe', namespace: k.namespace, body: note(2) });
  const change = await resumed.next();
  t.equal(change.type, 'MODIFIED');
  t.equal(change.object.message, 'note 2', 'the watch from the relist sees the next change');
});

t.test('a Service watch is served from the watch cache, which compaction does not expire', async (t) => {
  const k = await kubeFixture(t, cluster);
  const before = await k.core.listNamespacedService({ namespace: k.namespace });
  const stale = before.metadata!.resourceVersion!;
  await k.createService({ name: 'web' });
  await k.core.patchNamespacedService({
    name: 'web',
    namespace: k.namespace,
    body: [{ op: 'add', path: '/metadata/labels', value: { v: '1' } }],
  });
  await cluster.compactEtcd();

  // The same resourceVersion read from etcd itself (an exact list) is gone...
  const exact = await expectApiError(
    k.core.listNamespacedService({ namespace: k.namespace, resourceVersion: stale, resourceVersionMatch: 'Exact' }),
  );
  t.equal(exact.code, 410, 'an exact list at the stale version is 410');
  t.equal(exact.reason, 'Expired');

  // ...but the watch cache still has every event since.
  const events = await watchEvents<V1Service>(t, cluster.kc, `/api/v1/namespaces/${k.namespace}/services`, {
    resourceVersion: stale,
  });
  t.same(
    [(await events.next()).type, (await events.next()).type],
    ['ADDED', 'MODIFIED'],
    'the watch replays the changes made before the compaction',
  );
});
