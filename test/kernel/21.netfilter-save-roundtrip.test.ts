// The structured form, rendered back to save syntax, is byte for byte what iptables-legacy-save
// prints: for a realistic kube-proxy node and for every extension nodenet decodes, both families.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import type { IpFamily } from '../../lib/kernel/netfilter/types.js';
import { makeNetns } from '../helpers/netns.js';
import { iptablesRestore, iptablesSave } from '../helpers/witness.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');

const cases: Array<[string, IpFamily, string[]]> = [
  ['kube-proxy.v4.rules', 'ipv4', ['mangle', 'filter', 'nat']],
  ['extensions.v4.rules', 'ipv4', ['filter', 'nat', 'raw']],
  ['extensions.v6.rules', 'ipv6', ['filter', 'nat', 'raw']],
];

for (const [file, family, expectedTables] of cases) {
  t.test(`${file} renders exactly as iptables-legacy-save`, async (t) => {
    const ns = await makeNetns(t);
    await iptablesRestore(ns, family, readFileSync(join(fixtures, file), 'utf8'));
    const tables = await netfilter.tables({ netns: ns.path, family });
    t.same([...tables].sort(), [...expectedTables].sort(), 'the tables the dump created');
    for (const table of tables) {
      const ours = await netfilter.read({ netns: ns.path, family, table });
      t.equal(netfilter.saveTable(ours), await iptablesSave(ns, family, table), `${table}`);
      t.equal(netfilter.saveTable(ours, { counters: true }), await iptablesSave(ns, family, table, true), `${table} with counters`);
      for (const c of ours.chains) {
        for (const r of c.rules) {
          for (const m of r.matches) t.not(m.options, null, `${table}/${c.name}: match ${m.name} rev ${m.revision} decoded`);
          if (r.target.kind === 'extension') t.not(r.target.options, null, `${table}/${c.name}: target ${r.target.name} decoded`);
        }
      }
    }
  });
}
