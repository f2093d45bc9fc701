// The informer wrapper restarts client-node's ListWatch after any error (which would otherwise
// end it for good) with exponential backoff and jitter, keeps its cache meanwhile, reports synced
// once a list has been applied, and tells a relist's removals from DELETED watch events.
import t from 'tap';

import type { KubeConfig, KubernetesListObject, V1Service } from '@kubernetes/client-node';

import { Informer, type InformerEvent, type InformerSource } from '../../lib/controller/informer.js';
import { FakeTimers, settle } from '../helpers/fake-timers.js';

const svc = (name: string, rv = '1'): V1Service => ({ metadata: { namespace: 'ns', name, resourceVersion: rv } });

// Behaves as ListWatch does where it matters: start() lists (when it has no resourceVersion),
// applies the list (deletes first, then adds) synchronously, reports list failures as 'error'.
class FakeListWatch implements InformerSource<V1Service> {
  starts = 0;
  stops = 0;
  listed = false;
  readonly objects = new Map<string, V1Service>();
  private readonly cbs: Record<string, Array<(o?: unknown) => void>> = { add: [], update: [], delete: [], error: [] };
  constructor(private readonly listFn: () => Promise<KubernetesListObject<V1Service>>) {}
  on(verb: string, cb: (arg: never) => void): void {
    this.cbs[verb]!.push(cb as (o?: unknown) => void);
  }
  emit(verb: string, o?: unknown): void {
    for (const cb of this.cbs[verb]!) cb(o);
  }
  async start(): Promise<void> {
    this.starts++;
    if (this.listed) return; // a restart resumes the watch from its resourceVersion
    let list;
    try {
      list = await this.listFn();
    } catch (e) {
      this.emit('error', e);
      return;
    }
    this.listed = true;
    const names = new Set(list.items.map((s) => s.metadata!.name!));
    for (const [name, o] of [...this.objects]) if (!names.has(name)) (this.objects.delete(name), this.emit('delete', o));
    for (const o of list.items) {
      const had = this.objects.has(o.metadata!.name!);
      this.objects.set(o.metadata!.name!, o);
      this.emit(had ? 'update' : 'add', o);
    }
  }
  async stop(): Promise<void> {
    this.stops++;
    // ListWatch reports the abort of its watch as an error.
    this.emit('error', new Error('The operation was aborted'));
  }
  list(): V1Service[] {
    return [...this.objects.values()];
  }
  get(name: string): V1Service | undefined {
    return this.objects.get(name);
  }
  /** A watch event. */
  watch(type: 'add' | 'delete', o: V1Service): void {
    if (type === 'add') this.objects.set(o.metadata!.name!, o);
    else this.objects.delete(o.metadata!.name!);
    this.emit(type, o);
  }
}

function setup(responses: Array<Error | V1Service[]>) {
  const timers = new FakeTimers();
  let source!: FakeListWatch;
  const warnings: Array<Record<string, unknown>> = [];
  const informer = new Informer<V1Service>({
    name: 'services',
    kubeConfig: {} as KubeConfig,
    path: '/api/v1/services',
    list: async () => {
      const next = responses.shift();
      if (!next || next instanceof Error) throw next ?? new Error('no more responses');
      return { items: next, metadata: { resourceVersion: '1' } };
    },
    restart: { initialMs: 1000, maxMs: 8000, jitter: 0 },
    resetAfterMs: 60_000,
    timers,
    log: { info: () => {}, warn: (fields) => void warnings.push(fields as Record<string, unknown>) },
    source: (list) => (source = new FakeListWatch(list)),
  });
  const events: Array<InformerEvent<V1Service>> = [];
  informer.subscribe((e) => events.push(e));
  return { timers, informer, source: () => source, events, warnings };
}

t.test('restarts after errors with growing delays until the list succeeds', async (t) => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
  const forbidden = Object.assign(new Error('Forbidden'), { statusCode: 403 });
  const { timers, informer, source, warnings } = setup([refused, forbidden, refused, [svc('a'), svc('b')]]);
  let synced = false;
  void informer.waitForSync().then(() => (synced = true));
  informer.start();
  await settle();
  t.equal(source().starts, 1);
  t.notOk(informer.synced, 'not synced after a failed list');
  t.same(timers.delays(), [1000], 'first restart after 1 s');
  await timers.advance(1000);
  t.same(timers.delays(), [2000], 'then 2 s');
  t.equal(informer.lastError, 'HTTP 403 Forbidden');
  await timers.advance(2000);
  t.same(timers.delays(), [4000], 'then 4 s');
  await timers.advance(4000);
  t.equal(source().starts, 4, 'four starts in all');
  t.ok(informer.synced && synced, 'synced once a list was applied');
  t.equal(informer.restarts, 3);
  t.equal(informer.lastError, null, 'the error is cleared');
  t.same(informer.list().map((s) => s.metadata?.name), ['a', 'b']);
  t.match(warnings[0], { informer: 'services', error: 'connect ECONNREFUSED 127.0.0.1:6443', retryInMs: 1000 });
  t.same(timers.delays(), [], 'no restart pending');
});

t.test('a watch error after a long healthy run restarts after the initial delay, keeping the cache', async (t) => {
  const { timers, informer, source } = setup([new Error('boom'), new Error('boom'), [svc('a')]]);
  informer.start();
  await settle();
  await timers.advance(1000);
  await timers.advance(2000);
  t.ok(informer.synced);
  t.same(timers.delays(), []);
  await timers.advance(120_000);
  source().emit('error', Object.assign(new Error('Internal Server Error'), { statusCode: 500 }));
  t.same(timers.delays(), [1000], 'the backoff was reset by the healthy run');
  t.same(informer.list().map((s) => s.metadata?.name), ['a'], 'the cache is kept meanwhile');
  t.ok(informer.synced, 'and still counts as synced');
  source().emit('error', new Error('twice'));
  t.same(timers.delays(), [1000], 'a second error while a restart is pending schedules nothing more');
  await timers.advance(1000);
  t.equal(source().starts, 4, 'restarted');
});

t.test('stop() cancels a pending restart and ignores the abort it causes', async (t) => {
  const { timers, informer, source } = setup([new Error('down')]);
  informer.start();
  await settle();
  t.same(timers.delays(), [1000]);
  await informer.stop();
  t.same(timers.delays(), [], 'no restart after stop');
  await timers.advance(60_000);
  t.equal(source().starts, 1);
  t.equal(informer.restarts, 1, 'the abort is not counted as a failure');
});

t.test('removals from a list are marked; DELETED watch events are not', async (t) => {
  const { informer, source, events } = setup([[svc('a'), svc('b'), svc('c')], [svc('a')]]);
  informer.start();
  await settle();
  t.same(events.map((e) => `${e.type} ${e.object.metadata?.name} ${e.fromList}`), ['add a true', 'add b true', 'add c true'], 'the first list');
  events.length = 0;
  source().watch('delete', svc('c', '2'));
  await settle();
  // A 410 makes ListWatch relist; the relist lacks b.
  source().listed = false;
  await source().start();
  await settle();
  t.same(
    events.map((e) => `${e.type} ${e.object.metadata?.name} ${e.fromList}`),
    ['delete c false', 'delete b true', 'update a true'],
    'c was deleted by a watch event, b vanished from a relist',
  );
});
