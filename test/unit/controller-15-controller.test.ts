// The Controller: no reconcile before every informer has synced (events before then are folded
// into the first reconcile), a periodic resync, readiness that follows sync and the last outcome.
import t from 'tap';

import type { KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';

import { Controller, type ControlledInformer } from '../../lib/controller/controller.js';
import type { InformerEvent } from '../../lib/controller/informer.js';
import { FakeTimers, settle } from '../helpers/fake-timers.js';

class FakeInformer implements ControlledInformer {
  synced = false;
  restarts = 0;
  lastError: string | null = null;
  started = false;
  private handlers: Array<(e: InformerEvent<KubernetesObject>) => void> = [];
  private waiters: Array<() => void> = [];
  constructor(readonly name: string) {}
  start(): void {
    this.started = true;
  }
  async stop(): Promise<void> {}
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
  subscribe(handler: (e: InformerEvent<KubernetesObject>) => void): void {
    this.handlers.push(handler);
  }
  sync(): void {
    this.synced = true;
    this.waiters.splice(0).forEach((w) => w());
  }
  change(): void {
    for (const h of this.handlers) h({ type: 'add', object: { metadata: { name: 'x' } }, fromList: false });
  }
}

function setup(reconcile: () => Promise<void>) {
  const timers = new FakeTimers();
  const services = new FakeInformer('services');
  const node = new FakeInformer('node');
  let resyncs = 0;
  const controller = new Controller({
    name: 'node-fixes',
    informers: [services, node],
    reconcile,
    resyncPeriodMs: 60_000,
    onResync: () => resyncs++,
    queue: { batchDelayMs: 100, retry: { initialMs: 1000, maxMs: 1000, jitter: 0 } },
    log: pino({ level: 'silent' }),
    timers,
  });
  return { timers, services, node, controller, resyncs: () => resyncs };
}

t.test('nothing is reconciled before every informer synced', async (t) => {
  let runs = 0;
  const { timers, services, node, controller } = setup(async () => void runs++);
  const started = controller.start();
  t.ok(services.started && node.started, 'informers started');
  services.change();
  services.sync();
  services.change();
  await timers.advance(10_000);
  t.equal(runs, 0, 'one informer synced is not enough');
  t.match(controller.readiness(), { ok: false, detail: 'node-fixes: informers not synced: node' });
  node.sync();
  await started;
  await timers.advance(100);
  t.equal(runs, 1, 'one reconcile once all synced');
  t.match(controller.readiness(), { ok: true });
  services.change();
  node.change();
  await timers.advance(100);
  t.equal(runs, 2, 'changes after sync are one more reconcile');
  await controller.stop();
});

t.test('a periodic resync reconciles with no event at all', async (t) => {
  let runs = 0;
  const { timers, services, node, controller, resyncs } = setup(async () => void runs++);
  services.sync();
  node.sync();
  await controller.start();
  await timers.advance(100);
  t.equal(runs, 1);
  await timers.advance(60_000);
  t.equal(resyncs(), 1);
  await timers.advance(100);
  t.equal(runs, 2, 'resync');
  await timers.advance(120_000);
  t.equal(runs, 4, 'and every period after');
  await controller.stop();
  await timers.advance(600_000);
  t.equal(runs, 4, 'none after stop');
});

t.test('readiness follows the last reconcile', async (t) => {
  let fail = true;
  const { timers, services, node, controller } = setup(async () => {
    if (fail) throw new Error('ETIMEDOUT waiting for the xtables lock');
  });
  services.sync();
  node.sync();
  await controller.start();
  await timers.advance(100);
  t.match(controller.readiness(), { ok: false, detail: 'node-fixes: last reconcile of node-fixes failed: ETIMEDOUT waiting for the xtables lock' });
  fail = false;
  await timers.advance(1000);
  await settle();
  t.match(controller.readiness(), { ok: true, detail: 'node-fixes: synced, last reconcile succeeded' });
  await controller.stop();
});
