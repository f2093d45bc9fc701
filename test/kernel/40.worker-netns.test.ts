// Every kernel worker thread is back in the process's namespace after many calls into other
// namespaces, including calls that failed inside them; concurrent calls never see each other's
// namespace.
import t from 'tap';

import { links, netfilter, runtime } from '../../lib/kernel/index.js';
import { makeNetns } from '../helpers/netns.js';

t.test('workers return home after successes and failures', async (t) => {
  const before = await runtime.workerNamespaces();
  t.ok(before.workers.length >= 2, 'more than one worker thread');
  t.ok(before.workers.every((w) => w === before.process), 'workers start in the process namespace');

  const spaces = await Promise.all([makeNetns(t), makeNetns(t), makeNetns(t)]);
  await Promise.all(spaces.map((ns, i) => ns.exec('ip', ['link', 'add', `marker${i}`, 'type', 'bridge'])));

  const calls: Array<Promise<void>> = [];
  for (let round = 0; round < 100; round++) {
    spaces.forEach((ns, i) => {
      calls.push(
        links.list({ netns: ns.path }).then((list) => {
          const markers = list.filter((l) => l.name.startsWith('marker')).map((l) => l.name);
          if (markers.length !== 1 || markers[0] !== `marker${i}`) throw new Error(`namespace ${i} saw ${markers.join(',')}`);
        }),
      );
      // Fails inside the namespace (no such table): the guard must still restore the thread.
      calls.push(netfilter.read({ netns: ns.path, table: 'nat' }).then(
        () => {
          throw new Error('nat should not exist');
        },
        (e: { code?: string }) => {
          if (e.code !== 'ENOENT') throw e;
        },
      ));
    });
    // Fails before entering (no such namespace).
    calls.push(links.list({ netns: '/var/run/netns/nodenet-missing' }).then(
      () => {
        throw new Error('missing namespace should fail');
      },
      () => undefined,
    ));
  }
  await Promise.all(calls);
  t.pass(`${calls.length} calls, each saw only its own namespace`);

  const after = await runtime.workerNamespaces();
  t.same(after.workers, after.workers.map(() => after.process), 'every worker is back in the process namespace');
  const own = await links.list();
  t.notOk(own.some((l) => l.name.startsWith('marker')), 'a call without netns runs in the process namespace');
});
