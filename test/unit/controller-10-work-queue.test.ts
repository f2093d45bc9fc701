// The work queue: bursts fold into one run, adds during a run give exactly one more, failures are
// retried with exponential backoff (not pulled forward by new adds), and a success resets it.
import t from 'tap';

import { Backoff } from '../../lib/controller/backoff.js';
import { WorkQueue } from '../../lib/controller/work-queue.js';
import { FakeTimers, settle } from '../helpers/fake-timers.js';

t.test('a burst of adds is one run, started at once', async (t) => {
  const timers = new FakeTimers();
  const runs: string[] = [];
  const queue = new WorkQueue<string>(async (key) => void runs.push(key), { timers, batchDelayMs: 100 });
  for (let i = 0; i < 500; i++) queue.add('node');
  queue.add('other');
  t.equal(queue.length, 2, 'two distinct keys wait');
  await timers.advance(0);
  t.same(runs, ['node', 'other'], 'a key that has not run lately runs without waiting out the batch delay');
  await timers.advance(10_000);
  t.same(runs, ['node', 'other'], 'and nothing more');
});

t.test('runs of one key start at least the batch delay apart', async (t) => {
  const timers = new FakeTimers();
  const starts: number[] = [];
  const queue = new WorkQueue<string>(async () => void starts.push(timers.now()), { timers, batchDelayMs: 100 });
  queue.add('node');
  await timers.advance(0);
  t.same(starts, [0], 'the first add runs at once');
  // An event every 10 ms for a second: at most one run per 100 ms, the first of each at 100 ms after the last.
  for (let i = 0; i < 100; i++) {
    await timers.advance(10);
    queue.add('node');
  }
  await timers.advance(1000);
  t.ok(starts.length >= 11 && starts.length <= 12, `about one run per 100 ms over 1.1 s (${starts.length} runs)`);
  t.ok(starts.every((at, i) => i === 0 || at - starts[i - 1]! >= 100), `never closer than 100 ms: ${starts.join(', ')}`);
  const count = starts.length;
  await timers.advance(500);
  const now = timers.now();
  queue.add('node');
  await timers.advance(0);
  t.equal(starts.length, count + 1, 'a quiet spell later, one more run');
  t.equal(starts.at(-1), now, 'and it starts at once again');
});

t.test('adds during a run give exactly one more run, after it', async (t) => {
  const timers = new FakeTimers();
  let release!: () => void;
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const queue = new WorkQueue<string>(
    async () => {
      runs++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => (release = resolve));
      running--;
    },
    { timers, batchDelayMs: 10 },
  );
  queue.add('node');
  await timers.advance(10);
  t.equal(runs, 1, 'running');
  for (let i = 0; i < 100; i++) queue.add('node');
  await timers.advance(1000);
  t.equal(runs, 1, 'a key never runs twice at once');
  release();
  await settle();
  await timers.advance(10);
  t.equal(runs, 2, 'one more run for all those adds');
  release();
  await settle();
  await timers.advance(1000);
  t.equal(runs, 2, 'and no third');
  t.equal(maxRunning, 1);
});

t.test('failures are retried with exponential backoff; a success resets it', async (t) => {
  const timers = new FakeTimers();
  let fail = true;
  const attempts: number[] = [];
  const retries: number[] = [];
  const queue = new WorkQueue<string>(
    async () => {
      attempts.push(timers.now());
      if (fail) throw new Error('kernel says no');
    },
    {
      timers,
      batchDelayMs: 0,
      retry: { initialMs: 1000, maxMs: 8000, jitter: 0 },
      onFailure: (_key, _error, retryInMs) => retries.push(retryInMs),
    },
  );
  queue.add('node');
  await timers.advance(0);
  for (let i = 0; i < 5; i++) await timers.advance(timers.delays()[0] ?? 0);
  t.same(retries, [1000, 2000, 4000, 8000, 8000, 8000], 'doubling up to the cap');
  t.same(
    attempts.slice(1).map((at, i) => at - attempts[i]!),
    [1000, 2000, 4000, 8000, 8000],
    'attempts spaced by those delays',
  );
  t.equal(queue.failures('node'), 6);
  t.ok(queue.retrying('node'));

  for (let i = 0; i < 50; i++) queue.add('node');
  await timers.advance(7999);
  t.equal(attempts.length, 6, 'adds do not pull a retry forward');

  fail = false;
  await timers.advance(1);
  t.equal(attempts.length, 7, 'the retry runs at its time');
  t.equal(queue.failures('node'), 0, 'and its success resets the backoff');
  fail = true;
  queue.add('node');
  await timers.advance(0);
  t.same(retries.at(-1), 1000, 'the next failure starts again at the initial delay');
  await queue.shutDown();
  t.same(timers.delays(), [], 'shutDown cancels the pending retry');
});

t.test('backoff jitter stays within its band', async (t) => {
  const low = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.2, random: () => 0.999999 });
  const high = new Backoff({ initialMs: 1000, maxMs: 60_000, jitter: 0.2, random: () => 0 });
  t.same([low.next(), low.next(), low.next()], [800, 1600, 3200], 'at most 20% less');
  t.same([high.next(), high.next(), high.next()], [1000, 2000, 4000], 'never more than the exponential step');
  t.throws(() => new Backoff({ initialMs: 0, maxMs: 1 }), RangeError);
  t.throws(() => new Backoff({ initialMs: 10, maxMs: 1 }), RangeError);
});
