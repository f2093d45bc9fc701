// The matched-packets metric reads the kernel's own counters of nodenet's acting rules, through
// either backend: a packet dropped by a rule in NODENET-DROP-INVALID counts once for drop-invalid,
// and the jump that led there does not count it again.
import t from 'tap';

import { readMatchedCounters } from '../../lib/controller/node-fixes/metrics.js';
import { netfilter } from '../../lib/kernel/index.js';
import type { TableState } from '../../lib/kernel/netfilter/index.js';
import { makeNetns } from '../helpers/netns.js';

const b = netfilter.build;

// Stands in for an INVALID packet: any UDP datagram to port 9, which the test can send at will.
const STATE: TableState = {
  family: 'ipv4',
  table: 'filter',
  chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({ protocol: 'udp' }, [b.udp({ dport: 9 })], b.drop())] }],
  jumps: [{ chain: 'OUTPUT', rule: b.rule({}, [], b.jump('NODENET-DROP-INVALID')) }],
};

for (const backend of [netfilter.legacyBackend, netfilter.nftBackend]) {
  t.test(`${backend.name}: dropped packets are counted for their feature`, async (t) => {
    const ns = await makeNetns(t);
    await backend.apply(STATE, { netns: ns.path });
    const before = await readMatchedCounters(['ipv4'], ns.path, backend.name);
    t.same(before.map((c) => [c.feature, c.packets]), [['drop-invalid', 0n]]);
    for (let i = 0; i < 3; i++) {
      await ns.exec(process.execPath, ['-e', "const s = require('node:dgram').createSocket('udp4'); s.send('x', 9, '127.0.0.1', () => s.close());"]);
    }
    const after = await readMatchedCounters(['ipv4'], ns.path, backend.name);
    t.same(after.map((c) => [c.feature, c.family, c.packets]), [['drop-invalid', 'ipv4', 3n]], 'three drops, counted once each');
    t.ok(after[0]!.bytes >= 3n * 29n, `bytes counted too (${after[0]!.bytes})`);
  });
}
