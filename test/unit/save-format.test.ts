// Printing rules that did not come from the kernel: the formatting rules in isolation.
import t from 'tap';

import { saveString } from '../../lib/kernel/netfilter/extension.js';
import { formatProbability } from '../../lib/kernel/netfilter/matches.js';
import { saveRule } from '../../lib/kernel/netfilter/save.js';
import type { Rule } from '../../lib/kernel/netfilter/types.js';

t.test('strings are quoted as xtables_save_string quotes them', async (t) => {
  t.equal(saveString('plain_word-1'), ' plain_word-1');
  t.equal(saveString('ns/name'), ' "ns/name"');
  t.equal(saveString(''), ' ""');
  t.equal(saveString(`a "b" \\ 'c'`), ` "a \\"b\\" \\\\ \\'c\\'"`);
});

t.test('probabilities print like printf("%.11f") with round-half-even', async (t) => {
  t.equal(formatProbability(0x40000000), '0.50000000000');
  t.equal(formatProbability(0x80000000), '1.00000000000');
  t.equal(formatProbability(0), '0.00000000000');
  t.equal(formatProbability(715827883), '0.33333333349', "kube-proxy's 1/3");
  t.equal(formatProbability(1 << 19), '0.00024414062', 'an exact tie rounds to even');
  t.equal(formatProbability(3 << 19), '0.00073242188', 'an exact tie rounds to even, upward');
});

t.test('an undecoded extension is shown, never dropped', async (t) => {
  const rule: Rule = {
    source: null,
    destination: null,
    inInterface: null,
    outInterface: null,
    protocol: null,
    fragment: null,
    matches: [{ name: 'mystery', revision: 3, raw: Buffer.from([1, 2]), options: null }],
    target: { kind: 'extension', name: 'ODD', revision: 0, raw: Buffer.alloc(0), options: null },
    counters: { packets: 1n, bytes: 2n },
  };
  t.equal(saveRule('X', rule, 'ipv4', { counters: true }), '[1:2] -A X -m mystery [undecoded revision 3: 0102] -j ODD [undecoded revision 0: ]');
});
