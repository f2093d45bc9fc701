// The nftables backend's kept view: after its first read of nodenet's table, an apply reads only
// the ruleset generation and plans against what the last commit left (the commit echoes the
// handles of the rules it added), so a change costs no dump. Whatever else commits in between, a
// namespace re-created under the same path, or a refused batch makes the next apply read the
// kernel again. Every step is checked against the kernel: a fresh read (no view) must find nothing
// to change, and `nft list` must show what was asked for.
import t, { type Test } from 'tap';

import { native, type RawNftDump, type RawNftDumpRequest } from '../../lib/kernel/native.js';
import * as b from '../../lib/kernel/netfilter/build.js';
import { deepFreeze } from '../../lib/kernel/netfilter/frozen.js';
import { applyNft, diffNft, forgetNftViews, nativeNftKernel, type NftKernel } from '../../lib/kernel/netfilter/nft/backend.js';
import type { RuleSpec, TableState } from '../../lib/kernel/netfilter/spec.js';
import { run } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

/** The native kernel, counting the dumps it is asked for. */
function counted(): NftKernel & { dumps: number } {
  const k = {
    dumps: 0,
    dump(request: RawNftDumpRequest, netns?: string): Promise<RawNftDump> {
      k.dumps++;
      return nativeNftKernel.dump(request, netns);
    },
    commit: nativeNftKernel.commit,
    readGeneration: nativeNftKernel.readGeneration!,
  };
  return k;
}

// Service i's two rules, as the model writes them (External-IP → Cluster-IP).
function serviceRules(i: number, port: number): RuleSpec[] {
  const header = { source: '10.244.0.0/16', destination: `203.0.${(i >> 8) & 255}.${i & 255}`, protocol: 'tcp' };
  const matches = [b.comment(`ns/svc-${i}`), b.tcp({ dport: port })];
  return [b.rule(header, matches, b.orMark(0x4000)), b.rule(header, matches, b.dnat(`10.96.${(i >> 8) & 255}.${i & 255}`, port))];
}

function natState(ports: number[], frozen: boolean): TableState {
  const rules = ports.flatMap((port, i) => serviceRules(i, port));
  const state: TableState = {
    family: 'ipv4',
    table: 'nat',
    chains: [{ name: 'NODENET-EXTERNAL-PODS', rules }],
    jumps: [{ chain: 'PREROUTING', rule: b.rule({}, [b.comment('nodenet external-cluster')], b.jump('NODENET-EXTERNAL-PODS')) }],
  };
  return frozen ? deepFreeze(state) : state;
}

/** The rule lines of nodenet's chain as nft lists them, counters left out. */
async function listed(ns: TestNetns): Promise<string[]> {
  const out = await ns.exec('nft', ['list', 'chain', 'ip', 'nodenet', 'nat-NODENET-EXTERNAL-PODS']);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('ip '))
    .map((l) => l.replace(/counter packets \d+ bytes \d+ /, ''));
}

/** With the view forgotten, a diff reads the kernel: nothing to change means the kernel is `state`. */
async function kernelHolds(t: Test, ns: TestNetns, state: TableState, what: string): Promise<void> {
  forgetNftViews();
  const d = await diffNft(state, { netns: ns.path });
  t.same(d.changes, [], `${what}: a fresh read of the kernel finds nothing to change`);
}

t.test('edits after the first apply read no table, and leave exactly what was asked', async (t) => {
  const ns = await makeNetns(t);
  const kernel = counted();
  const ports = Array.from({ length: 300 }, (_, i) => 1000 + i);
  let state = natState(ports, true);
  const first = await applyNft(state, { netns: ns.path, kernel });
  t.ok(first.committed, 'the first apply commits');
  t.equal(kernel.dumps, 1, 'and read the table once');

  // Edits at the start, the middle and the end of the chain, a removal and an addition.
  const edits: Array<[string, (p: number[]) => number[]]> = [
    ['middle', (p) => p.map((x, i) => (i === 150 ? 8080 : x))],
    ['first', (p) => p.map((x, i) => (i === 0 ? 9090 : x))],
    ['last', (p) => p.map((x, i) => (i === p.length - 1 ? 7070 : x))],
    ['removed', (p) => p.slice(0, -1)],
    ['added', (p) => [...p, 6060]],
  ];
  for (const [what, edit] of edits) {
    ports.splice(0, ports.length, ...edit(ports));
    state = natState(ports, true);
    const r = await applyNft(state, { netns: ns.path, kernel });
    t.ok(r.committed && r.changes.length > 0, `${what}: committed ${r.changes.length} changes`);
    t.equal(kernel.dumps, 1, `${what}: without reading the table`);
    const again = await applyNft(state, { netns: ns.path, kernel });
    t.notOk(again.committed, `${what}: applying the same state again commits nothing`);
  }
  const lines = await listed(ns);
  t.equal(lines.length, 2 * ports.length, 'nft lists two rules per Service');
  t.match(lines[1], /ip daddr 203\.0\.0\.0 tcp dport 9090 .*dnat to 10\.96\.0\.0:9090/, 'the first Service edited in place');
  t.match(lines.at(-1), /tcp dport 6060 .*dnat to 10\.96\.1\.43:6060/, 'the added one last');
  await kernelHolds(t, ns, state, 'after the edits');
});

t.test('a rule, mutable or frozen, edited between applies: the state is what counts', async (t) => {
  const ns = await makeNetns(t);
  const kernel = counted();
  const state = natState([80, 81, 82], false);
  await applyNft(state, { netns: ns.path, kernel });
  // An embedder reusing its objects: the same rule object, edited.
  const dnat = state.chains[0]!.rules[3]!;
  (dnat.target as { options: { ports: unknown } }).options = (b.dnat('10.96.0.99', 81) as { options: { ports: unknown } }).options;
  const r = await applyNft(state, { netns: ns.path, kernel });
  t.ok(r.committed, 'the edited object is written');
  t.match((await listed(ns))[3], /dnat to 10\.96\.0\.99:81/, 'as edited, not as first encoded');
  await kernelHolds(t, ns, state, 'after editing a mutable rule');
});

t.test('another writer commits: the next apply reads the table again and repairs drift', async (t) => {
  const ns = await makeNetns(t);
  const kernel = counted();
  const state = natState([80, 81], true);
  await applyNft(state, { netns: ns.path, kernel });
  await ns.exec('nft', ['add', 'rule', 'ip', 'nodenet', 'nat-NODENET-EXTERNAL-PODS', 'counter', 'accept']);
  const r = await applyNft(state, { netns: ns.path, kernel });
  t.equal(kernel.dumps, 2, 'the generation moved, so the table was read');
  t.same(r.changes, ['- nat-NODENET-EXTERNAL-PODS: counter accept'], 'and the stranger rule removed');
  t.equal((await listed(ns)).length, 4);
  // A commit to somebody else's table moves the generation too: read again, nothing to change.
  await ns.exec('nft', ['add', 'table', 'ip', 'other']);
  const quiet = await applyNft(state, { netns: ns.path, kernel });
  t.equal(kernel.dumps, 3, 'any foreign commit means a read');
  t.notOk(quiet.committed, 'and nothing of nodenet changed');
  t.equal((await ns.exec('nft', ['list', 'tables'])).includes('table ip other'), true, 'the other table stays');
});

t.test('a namespace re-created under the same path is read afresh, not taken for the old one', async (t) => {
  const ns = await makeNetns(t);
  const kernel = counted();
  const state = natState([80, 81, 82], true);
  await applyNft(state, { netns: ns.path, kernel });
  const before = await native().nftGeneration(ns.path);
  await run('ip', ['netns', 'del', ns.name]);
  await run('ip', ['netns', 'add', ns.name]);
  const after = await native().nftGeneration(ns.path);
  t.not(after.netnsCookie, before.netnsCookie, 'a new namespace, a new cookie');
  const r = await applyNft(state, { netns: ns.path, kernel });
  t.equal(kernel.dumps, 2, 'the new namespace was read');
  t.ok(r.committed, 'and everything written into it');
  t.equal((await listed(ns)).length, 6);
});

t.test('a refused batch forgets the view', async (t) => {
  const ns = await makeNetns(t);
  const kernel = counted();
  const state = natState([80, 81], true);
  await applyNft(state, { netns: ns.path, kernel });
  let raced = false;
  const r = await applyNft(natState([80, 8081], true), {
    netns: ns.path,
    kernel,
    beforeCommit: async () => {
      if (raced) return;
      raced = true;
      await ns.exec('nft', ['add', 'table', 'ip', 'racer']);
    },
  });
  t.equal(r.attempts, 2, 'the first commit was refused (ERESTART) and retried');
  t.equal(kernel.dumps, 2, 'after reading the table again');
  await kernelHolds(t, ns, natState([80, 8081], true), 'after the retry');
});
