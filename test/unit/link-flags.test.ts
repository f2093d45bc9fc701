import t from 'tap';

import { linkFlagNames } from '../../lib/kernel/links.js';

t.test('flag names follow ip link', async (t) => {
  t.same(linkFlagNames(0x10049), ['LOOPBACK', 'UP', 'LOWER_UP'], 'lo: UP|LOOPBACK|RUNNING|LOWER_UP');
  t.same(linkFlagNames(0x1003), ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'], 'up without carrier');
  t.same(linkFlagNames(0x1002), ['BROADCAST', 'MULTICAST'], 'down');
  t.same(linkFlagNames(0x1000 | 0x800 | 0x41 | 0x10000), ['MULTICAST', 'SLAVE', 'UP', 'LOWER_UP']);
  t.same(linkFlagNames(0x100000), ['100000'], 'unknown bits in hex');
});
