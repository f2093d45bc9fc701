// What the agent logs for a commit: every change of a small commit, word for word (operators and
// the benchmark read them), and for a first apply of tens of thousands of rules a bounded line: the
// first 5,000 changes, the count, and a message of the first 20.
import t from 'tap';

import { CHANGES_IN_MESSAGE, changeLog, LOGGED_CHANGES } from '../../lib/controller/node-fixes/reconciler.js';

t.test('a small commit is logged whole', async (t) => {
  const changes = ['- nat-NODENET-EXTERNAL-PODS: ip daddr 198.18.0.1 …', '+ nat-NODENET-EXTERNAL-PODS: ip daddr 198.18.0.2 …'];
  const log = changeLog(changes);
  t.same(log.changes, changes);
  t.equal(log.total, 2);
  t.equal(log.summary, changes.join('; '));
});

t.test('a cold commit of 40,000 rules: bounded, and says how many there were', async (t) => {
  const changes = Array.from({ length: 40_000 }, (_, i) => `+ nat-NODENET-EXTERNAL-PODS.${i}: ip daddr 198.18.${i >> 8}.${i & 255} tcp dport 80 dnat to 10.96.0.1:80`);
  const log = changeLog(changes);
  t.equal(log.changes.length, LOGGED_CHANGES, 'the field holds the first 5,000');
  t.same(log.changes, changes.slice(0, LOGGED_CHANGES), 'in order');
  t.equal(log.total, 40_000, 'the count is all of them');
  t.ok(log.summary.startsWith(changes.slice(0, CHANGES_IN_MESSAGE).join('; ')), 'the message starts with the first 20');
  t.match(log.summary, /… and 39980 more \(40000 in all\)$/);
  t.ok(JSON.stringify(log).length < 600_000, `the line is ${JSON.stringify(log).length} bytes, not ${JSON.stringify(changes).length * 2}`);
});

t.test('just over the message limit', async (t) => {
  const changes = Array.from({ length: CHANGES_IN_MESSAGE + 1 }, (_, i) => `c${i}`);
  t.match(changeLog(changes).summary, /; c19; … and 1 more \(21 in all\)$/);
  t.same(changeLog(changes).changes, changes, 'the field holds them all');
});
