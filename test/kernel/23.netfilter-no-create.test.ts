// Reading never creates a legacy table: libiptc would instantiate it, so the addon asks the
// kernel's table list first.
import t from 'tap';

import { isKernelError, netfilter } from '../../lib/kernel/index.js';
import { makeNetns } from '../helpers/netns.js';
import { iptables, legacyTableNames } from '../helpers/witness.js';

t.test('a missing table is ENOENT and stays missing', async (t) => {
  const ns = await makeNetns(t);
  t.same(await legacyTableNames(ns, 'ipv4'), [], 'a fresh namespace has no legacy tables');
  t.same(await netfilter.tables({ netns: ns.path }), []);
  for (const family of ['ipv4', 'ipv6'] as const) {
    for (const table of ['filter', 'nat', 'mangle', 'raw', 'security']) {
      const error = await netfilter.read({ netns: ns.path, family, table }).then(
        () => null,
        (e: unknown) => e,
      );
      t.ok(isKernelError(error), `${family} ${table} rejects with a KernelError`);
      if (!isKernelError(error)) continue;
      t.equal(error.code, 'ENOENT');
      t.equal(error.op, 'netfilter.read');
      t.equal(error.object, `table ${table} (${family})`);
      t.equal(error.netns, ns.path);
      t.match(error.message, /does not exist/);
    }
    t.same(await legacyTableNames(ns, family), [], `no ${family} table was created by reading`);
  }
});

t.test('reading one table creates no other', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv4', ['-t', 'nat', '-N', 'X']);
  t.same(await legacyTableNames(ns, 'ipv4'), ['nat']);
  await netfilter.read({ netns: ns.path, table: 'nat' });
  t.same(await netfilter.tables({ netns: ns.path }), ['nat']);
  t.same(await legacyTableNames(ns, 'ipv4'), ['nat']);
  t.same(await legacyTableNames(ns, 'ipv6'), []);
});
