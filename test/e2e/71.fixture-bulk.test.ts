// Many Services at once: the bulk creator keeps requests in flight and loses none.
import t from 'tap';

import { startCluster } from '../helpers/cluster.js';
import { kubeFixture, type ServiceOptions } from '../helpers/kube.js';

const cluster = await startCluster(t);

t.test('1000 Services, 32 requests in flight', async (t) => {
  const k = await kubeFixture(t, cluster);
  const wanted: ServiceOptions[] = Array.from({ length: 1000 }, (_, i) => ({
    name: `svc-${i}`,
    ...(i % 2 ? { type: 'LoadBalancer' as const, allocateLoadBalancerNodePorts: false } : {}),
    ports: [{ name: 'p', port: 1000 + i, protocol: 'TCP' }],
  }));
  const started = Date.now();
  const created = await k.createServices(wanted);
  const seconds = (Date.now() - started) / 1000;
  t.comment(`created ${created.length} Services in ${seconds.toFixed(1)} s (${Math.round(created.length / seconds)}/s)`);

  t.same(
    created.map((s) => s.metadata?.name),
    wanted.map((s) => s.name),
    'resolved in input order',
  );
  const listed = await k.core.listNamespacedService({ namespace: k.namespace });
  t.equal(listed.items.length, 1000, 'all of them exist');
  const ips = new Set(listed.items.map((s) => s.spec?.clusterIP));
  t.equal(ips.size, 1000, 'each with its own cluster IP');
  t.notOk(
    listed.items.some((s) => s.spec?.ports?.some((p) => p.nodePort)),
    'no node ports used by the LoadBalancers',
  );
  t.same(
    listed.items.find((s) => s.metadata?.name === 'svc-999')?.spec?.ports?.map((p) => p.port),
    [1999],
    'each as specified',
  );
});

t.test('a failure names the Service and does not hide behind the others', async (t) => {
  const k = await kubeFixture(t, cluster);
  const wanted: ServiceOptions[] = Array.from({ length: 40 }, (_, i) => ({ name: i === 17 ? 'Not_A_Name' : `ok-${i}` }));
  await t.rejects(k.createServices(wanted, { concurrency: 8 }), /creating service Not_A_Name: HTTP 422 Invalid/);
});
