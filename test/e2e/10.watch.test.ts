// A client-node watch, and an Informer built on one, follow a Service through its whole life on a
// real apiserver.
import t from 'tap';

import { makeInformer, type V1Service } from '@kubernetes/client-node';

import { startCluster } from '../helpers/cluster.js';
import { eventually, kubeFixture, watchEvents } from '../helpers/kube.js';

const cluster = await startCluster(t);

t.test('ADDED, MODIFIED and DELETED for a Service', async (t) => {
  const k = await kubeFixture(t, cluster);
  const list = await k.core.listNamespacedService({ namespace: k.namespace });
  t.same(list.items, [], 'a fresh namespace has no Services');
  const events = await watchEvents<V1Service>(t, cluster.kc, `/api/v1/namespaces/${k.namespace}/services`, {
    resourceVersion: list.metadata?.resourceVersion,
  });

  const created = await k.createService({ name: 'web' });
  const added = await events.next();
  t.equal(added.type, 'ADDED');
  t.equal(added.object.metadata?.name, 'web');
  t.equal(added.object.metadata?.resourceVersion, created.metadata?.resourceVersion, 'the event carries the created version');
  t.match(added.object.spec?.clusterIP, /^10\.96\./, 'the apiserver allocated a cluster IP from the service range');

  // client-node sends a patch as a JSON patch unless told otherwise.
  await k.core.patchNamespacedService({
    name: 'web',
    namespace: k.namespace,
    body: [{ op: 'add', path: '/metadata/labels', value: { tier: 'front' } }],
  });
  const modified = await events.next();
  t.equal(modified.type, 'MODIFIED');
  t.same(modified.object.metadata?.labels, { tier: 'front' });
  t.not(modified.object.metadata?.resourceVersion, added.object.metadata?.resourceVersion, 'with a new resourceVersion');

  await k.core.deleteNamespacedService({ name: 'web', namespace: k.namespace });
  const deleted = await events.next();
  t.equal(deleted.type, 'DELETED');
  t.equal(deleted.object.metadata?.uid, created.metadata?.uid, 'the same object was deleted');
  t.same(events.pending(), [], 'nothing else happened');
});

t.test('a watch in one namespace does not see another', async (t) => {
  const [mine, theirs] = await Promise.all([kubeFixture(t, cluster), kubeFixture(t, cluster)]);
  const list = await mine.core.listNamespacedService({ namespace: mine.namespace });
  const events = await watchEvents<V1Service>(t, cluster.kc, `/api/v1/namespaces/${mine.namespace}/services`, {
    resourceVersion: list.metadata?.resourceVersion,
  });
  await theirs.createService({ name: 'elsewhere' });
  await mine.createService({ name: 'here' });
  const first = await events.next();
  t.equal(first.object.metadata?.name, 'here', 'the first event is for this namespace');
  t.equal(first.object.metadata?.namespace, mine.namespace);
});

t.test('an Informer lists, then follows the watch', async (t) => {
  const k = await kubeFixture(t, cluster);
  await k.createService({ name: 'before' });
  const informer = makeInformer<V1Service>(cluster.kc, `/api/v1/namespaces/${k.namespace}/services`, () =>
    k.core.listNamespacedService({ namespace: k.namespace }),
  );
  const seen: string[] = [];
  const record = (verb: string) => (s: V1Service) => seen.push(`${verb} ${s.metadata?.name}`);
  informer.on('add', record('add'));
  informer.on('update', record('update'));
  informer.on('delete', record('delete'));
  // stop() aborts the watch request, and client-node reports that abort as an error too.
  let stopped = false;
  informer.on('error', (e) => stopped || t.fail(`informer error: ${String(e)}`));
  const settle = (count: number) =>
    eventually(async () => {
      if (seen.length < count) throw new Error(`informer reported ${JSON.stringify(seen)}, expected ${count} events`);
    }, 10_000, 20);
  t.teardown(() => {
    stopped = true;
    return informer.stop();
  });
  await informer.start();
  await settle(1);
  await k.createService({ name: 'after' });
  await settle(2);
  await k.core.patchNamespacedService({
    name: 'after',
    namespace: k.namespace,
    body: [{ op: 'add', path: '/metadata/labels', value: { v: '2' } }],
  });
  await settle(3);
  await k.core.deleteNamespacedService({ name: 'before', namespace: k.namespace });
  await settle(4);
  t.same(seen, ['add before', 'add after', 'update after', 'delete before']);
  t.same(informer.list(k.namespace).map((s) => s.metadata?.name), ['after'], 'its cache holds what is left');
});
