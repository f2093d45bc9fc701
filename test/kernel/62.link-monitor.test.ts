// linkMonitor.watch on a real kernel: RTM_NEWLINK / RTM_DELLINK from a test namespace arrive as
// events that agree with `ip -j link show`; a monitor hears only its own namespace; close() stops
// delivery and lets the process exit; a burst the consumer cannot keep up with ends in an
// 'overflow' event; a namespace that does not exist is a KernelError naming its path.
//
// Events are awaited as they come; the timeouts below only turn a missing event into a failure
// that lists what did arrive, instead of a hung test.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { isKernelError, linkMonitor, type LinkChange, type LinkEvent } from '../../lib/kernel/index.js';
import { distEntry } from '../helpers/dist.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { ipLinks } from '../helpers/witness.js';

const GUARD_MS = 15_000;

/** Records a watch's events and resolves waits for particular ones. */
class Recorder {
  readonly events: LinkEvent[] = [];
  private waiters: Array<{ match: (e: LinkEvent) => boolean; resolve: (e: LinkEvent) => void }> = [];

  readonly onEvent = (e: LinkEvent): void => {
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(e)) return true;
      w.resolve(e);
      return false;
    });
  };

  changes(): LinkChange[] {
    return this.events.filter((e): e is LinkChange => e.type !== 'overflow');
  }

  /** The first event (already seen or still to come) that matches. */
  waitFor(what: string, match: (e: LinkEvent) => boolean): Promise<LinkEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no ${what} within ${GUARD_MS} ms; events: ${JSON.stringify(this.events.slice(-20))}`));
      }, GUARD_MS);
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  change(type: 'new' | 'del', name: string, also: (e: LinkChange) => boolean = () => true): Promise<LinkChange> {
    return this.waitFor(`'${type}' event for ${name}`, (e) => e.type === type && e.name === name && also(e)) as Promise<LinkChange>;
  }
}

function watchRecorded(t: { teardown(fn: () => unknown): void }, ns: TestNetns): { rec: Recorder; watch: linkMonitor.LinkWatch } {
  const rec = new Recorder();
  const watch = linkMonitor.watch({
    netns: ns.path,
    onEvent: rec.onEvent,
    onError: (e) => {
      throw e;
    },
  });
  t.teardown(() => watch.close());
  return { rec, watch };
}

async function ipLink(ns: TestNetns, name: string) {
  const link = (await ipLinks(ns)).find((l) => l.ifname === name);
  if (!link) throw new Error(`ip link shows no ${name} in ${ns.name}`);
  return link;
}

t.test('a veth with its peer in a pod namespace: new, changes, del', async (t) => {
  const node = await makeNetns(t);
  const pod = await makeNetns(t);
  const { rec } = watchRecorded(t, node);
  const host = 'veth9f8e7d6c';

  await node.exec('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
  const added = await rec.change('new', host);
  const witness = await ipLink(node, host);
  const eth0 = await ipLink(pod, 'eth0');
  t.equal(added.kind, 'veth', 'kind veth');
  t.equal(added.index, witness.ifindex, 'the index ip link shows');
  t.type(witness.link_netnsid, 'number', 'ip link shows a link-netnsid for the host end');
  t.equal(added.linkNetnsId, witness.link_netnsid, 'the link-netnsid ip link shows');
  t.equal(added.linkIndex, eth0.ifindex, "the peer's index in the pod namespace");
  t.equal(added.master, null, 'no master');
  t.equal(added.flags & 0x1, 0, 'created down');

  await node.exec('ip', ['link', 'add', 'cbr0', 'type', 'bridge']);
  await node.exec('ip', ['link', 'set', host, 'master', 'cbr0']);
  const cbr0 = await ipLink(node, 'cbr0');
  const enslaved = await rec.change('new', host, (e) => e.master !== null);
  t.equal(enslaved.master, cbr0.ifindex, 'a change names the new master by index');
  // Leaving the bridge makes it send an AF_BRIDGE RTM_DELLINK for the port: not a deletion.
  await node.exec('ip', ['link', 'set', host, 'nomaster']);
  await node.exec('ip', ['link', 'set', host, 'up']);
  await rec.change('new', host, (e) => e.master === null && (e.flags & 0x1) !== 0);
  t.notOk(rec.events.some((e) => e.type === 'del'), 'no del event while the veth exists');

  await node.exec('ip', ['link', 'del', host]);
  const deleted = await rec.change('del', host);
  t.equal(deleted.index, witness.ifindex, 'del names the same index');
  t.equal(deleted.kind, 'veth');
  t.notOk(rec.changes().some((e) => e.name === 'eth0'), "the peer's own events stay in the pod namespace");
  t.notOk(rec.events.some((e) => e.type === 'overflow'), 'no overflow');
});

t.test('a monitor hears only its own namespace', async (t) => {
  const a = await makeNetns(t);
  const b = await makeNetns(t);
  const inA = watchRecorded(t, a).rec;
  const inB = watchRecorded(t, b).rec;
  // B's change comes first: had A's socket been told of it, it would be queued before A's own.
  await b.exec('ip', ['link', 'add', 'onlyb0', 'type', 'bridge']);
  await inB.change('new', 'onlyb0');
  await a.exec('ip', ['link', 'add', 'onlya0', 'type', 'bridge']);
  await inA.change('new', 'onlya0');
  t.same([...new Set(inA.changes().map((e) => e.name))], ['onlya0'], 'A saw only its link');
  t.same([...new Set(inB.changes().map((e) => e.name))], ['onlyb0'], 'B saw only its link');
});

t.test('close() stops events at once and is idempotent', async (t) => {
  const ns = await makeNetns(t);
  const closing = watchRecorded(t, ns);
  const witness = watchRecorded(t, ns).rec;
  await ns.exec('ip', ['link', 'add', 'before0', 'type', 'bridge']);
  await closing.rec.change('new', 'before0');
  closing.watch.close();
  t.ok(closing.watch.closed);
  closing.watch.close();
  closing.watch.ref().unref();
  await ns.exec('ip', ['link', 'add', 'after0', 'type', 'bridge']);
  await witness.change('new', 'after0');
  // The still-open watch saw after0, so the closed one would have had it by now too.
  t.notOk(closing.rec.changes().some((e) => e.name === 'after0'), 'nothing after close()');
});

// A child process must end on its own; the guard kills it and fails the test if it does not.
function runChild(script: string, onReady: () => Promise<void>): Promise<{ code: number | null; stdout: string; stderr: string; hung: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, GUARD_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const wasReady = stdout.includes('ready\n');
      stdout += d;
      if (!wasReady && stdout.includes('ready\n')) onReady().catch(reject);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, hung });
    });
  });
}

t.test('the process exits once its watches are closed, or unref()d', async (t) => {
  const ns = await makeNetns(t);
  const kernel = JSON.stringify(distEntry('lib/kernel/index.js'));
  const closes = `
    const { linkMonitor } = await import(${kernel});
    const w = linkMonitor.watch({ netns: ${JSON.stringify(ns.path)}, onEvent(e) {
      if (e.type === 'new' && e.name === 'exit0') { console.log('seen'); w.close(); }
    } });
    const idle = linkMonitor.watch({ netns: ${JSON.stringify(ns.path)}, onEvent() {} });
    idle.close();
    console.log('ready');`;
  const closed = await runChild(closes, () => ns.exec('ip', ['link', 'add', 'exit0', 'type', 'bridge']).then(() => undefined));
  t.notOk(closed.hung, 'exits after close() from inside its own event handler');
  t.equal(closed.code, 0, closed.stderr);
  t.equal(closed.stdout, 'ready\nseen\n');

  const unrefs = `
    const { linkMonitor } = await import(${kernel});
    linkMonitor.watch({ netns: ${JSON.stringify(ns.path)}, onEvent() {} }).unref();
    console.log('ready');`;
  const unrefd = await runChild(unrefs, async () => {});
  t.notOk(unrefd.hung, 'an unref()d open watch does not hold the process');
  t.equal(unrefd.code, 0, unrefd.stderr);
});

t.test('a burst the consumer cannot keep up with ends in an overflow, then events resume', async (t) => {
  const ns = await makeNetns(t);
  const { rec } = watchRecorded(t, ns);
  await ns.exec('ip', ['link', 'add', 'burst0', 'type', 'bridge']);
  await rec.change('new', 'burst0');
  const created = rec.events.length;
  // More changes than the monitor queues for a consumer that is not reading (kMaxQueued, 4096).
  // Each MTU change is one RTM_NEWLINK; unlike creating links, it leaves the namespace cheap to
  // delete (removing thousands of devices would hold the RTNL lock for seconds after the test).
  const count = 4300;
  const dir = mkdtempSync(join(tmpdir(), 'nodenet-linkmon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const batch = join(dir, 'links.batch');
  writeFileSync(batch, Array.from({ length: count }, (_, i) => `link set burst0 mtu ${1400 + (i % 2)}\n`).join(''));
  // spawnSync holds the event loop, so nothing is delivered while the kernel sends every change.
  const { LD_PRELOAD: _preload, ...env } = process.env;
  const result = spawnSync('ip', ['-n', ns.name, '-batch', batch], { env, encoding: 'utf8' });
  t.equal(result.status, 0, result.stderr);
  await rec.waitFor('overflow', (e) => e.type === 'overflow');
  const at = rec.events.findIndex((e) => e.type === 'overflow');
  t.ok(at - created > 0 && at - created < count, `an overflow after ${at - created} of ${count} changes`);
  t.ok(
    rec.events.slice(0, at).every((e) => e.type === 'new' && e.name === 'burst0'),
    'the events before it are the changes that fit, in order',
  );
  await ns.exec('ip', ['link', 'add', 'calm0', 'type', 'bridge']);
  await rec.change('new', 'calm0');
  t.equal(rec.events.filter((e) => e.type === 'overflow').length, 1, 'one overflow for the one burst');
});

t.test('a namespace path that does not exist is a KernelError naming it', async (t) => {
  const path = '/var/run/netns/nodenet-no-such-namespace';
  let error: unknown;
  try {
    linkMonitor.watch({ netns: path, onEvent: () => t.fail('no event expected') });
  } catch (e) {
    error = e;
  }
  t.ok(isKernelError(error), 'a KernelError');
  t.match(error, { code: 'ENOENT', op: 'linkMonitor.watch', netns: path, message: new RegExp(path) });
  t.throws(() => linkMonitor.watch({ onEvent: 'no' } as never), TypeError, 'a non-function handler is a TypeError');
});
