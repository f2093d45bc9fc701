// Warning Events: one per object and reason per interval; a repeat after the interval updates the
// same Event (count, time) with a merge patch, or creates a new one if it expired; a node-wide
// cap holds back bursts. Against a loopback HTTP server that records what the API would receive.
import { createServer, type IncomingMessage } from 'node:http';

import t from 'tap';

import { KubeConfig } from '@kubernetes/client-node';

import { EventRecorder } from '../../lib/controller/events.js';
import { Metrics } from '../../lib/controller/metrics.js';
import { FakeTimers } from '../helpers/fake-timers.js';

interface Seen {
  method: string;
  path: string;
  type: string;
  body: Record<string, unknown>;
}

async function fakeApi(t: { teardown(fn: () => unknown): void }, answer: (req: Seen) => number) {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const entry = { method: req.method!, path: req.url!, type: String(req.headers['content-type']), body: JSON.parse(text || '{}') as Record<string, unknown> };
      seen.push(entry);
      const status = answer(entry);
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(status < 300 ? { ...entry.body, kind: 'Event', apiVersion: 'v1' } : { kind: 'Status', code: status, reason: 'NotFound' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return { kc, seen };
}

const web = { kind: 'Service', apiVersion: 'v1', namespace: 'shop', name: 'web', uid: 'u-1' };

t.test('create, suppress within the interval, patch after it, create anew when expired', async (t) => {
  let expired = false;
  const { kc, seen } = await fakeApi(t, (r) => (r.method === 'PATCH' && expired ? 404 : r.method === 'POST' ? 201 : 200));
  const timers = new FakeTimers();
  const metrics = new Metrics();
  const events = new EventRecorder({ kubeConfig: kc, component: 'nodenet', host: 'node-a', minIntervalMs: 600_000, timers, metrics });

  events.warning(web, 'NotIPVSMode', 'first');
  await events.flush();
  t.equal(seen.length, 1);
  t.match(seen[0], {
    method: 'POST',
    path: '/api/v1/namespaces/shop/events',
    body: {
      metadata: { name: /^web\.[0-9a-f]+$/, namespace: 'shop' },
      involvedObject: { kind: 'Service', apiVersion: 'v1', namespace: 'shop', name: 'web', uid: 'u-1' },
      reason: 'NotIPVSMode',
      message: 'first',
      type: 'Warning',
      count: 1,
      source: { component: 'nodenet', host: 'node-a' },
      reportingComponent: 'nodenet',
      reportingInstance: 'node-a',
    },
  });
  const name = (seen[0]!.body.metadata as { name: string }).name;

  for (let i = 0; i < 20; i++) events.warning(web, 'NotIPVSMode', 'again');
  await timers.advance(599_999);
  events.warning(web, 'NotIPVSMode', 'again');
  await events.flush();
  t.equal(seen.length, 1, 'nothing sent within the interval');
  events.warning(web, 'OtherReason', 'different reason');
  await events.flush();
  t.equal(seen.length, 2, 'another reason is another Event');

  await timers.advance(1);
  events.warning(web, 'NotIPVSMode', 'later');
  await events.flush();
  t.match(seen[2], { method: 'PATCH', path: `/api/v1/namespaces/shop/events/${name}`, type: 'application/merge-patch+json', body: { count: 2, message: 'later' } });
  t.ok(typeof seen[2]!.body.lastTimestamp === 'string');

  expired = true;
  await timers.advance(600_000);
  events.warning(web, 'NotIPVSMode', 'after expiry');
  await events.flush();
  t.match(seen.slice(3).map((s) => s.method), ['PATCH', 'POST'], 'a 404 on the patch creates a new Event');
  t.match(seen[4]!.body, { count: 1, message: 'after expiry' });
  t.equal(
    (await metrics.registry.getSingleMetricAsString('nodenet_kubernetes_events_total')).match(/outcome="suppressed"} (\d+)/)?.[1],
    '21',
    'suppressions are counted',
  );
});

t.test('a node-wide cap: a burst, then a steady rate', async (t) => {
  const { kc, seen } = await fakeApi(t, () => 201);
  const timers = new FakeTimers();
  const events = new EventRecorder({ kubeConfig: kc, component: 'nodenet', host: 'node-a', burst: 5, perMinute: 6, timers });
  for (let i = 0; i < 50; i++) events.warning({ ...web, name: `s${i}` }, 'NotIPVSMode', 'x');
  await events.flush();
  t.equal(seen.length, 5, 'the burst');
  await timers.advance(10_000);
  for (let i = 5; i < 50; i++) events.warning({ ...web, name: `s${i}` }, 'NotIPVSMode', 'x');
  await events.flush();
  t.equal(seen.length, 6, 'one more after 10 s at 6 per minute');
});
