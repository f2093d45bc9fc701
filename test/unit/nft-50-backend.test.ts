// The nftables backend's apply/diff loop against an in-memory stand-in for nf_tables that keeps the
// semantics nodenet relies on: atomic batches checked against the generation they were planned at
// (ERESTART otherwise), chains that cannot go while a rule jumps to them, rules inserted after a
// handle. The real kernel is test/kernel/97.nft-backend.test.ts; this covers the loop's logic
// and, over many states, that applying always converges.
import t from 'tap';

import { KernelError } from '../../lib/kernel/errors.js';
import type { RawNftChain, RawNftCommitRequest, RawNftCommitResult, RawNftDump, RawNftDumpRequest, RawNftExpr, RawNftOp, RawNftRule } from '../../lib/kernel/native.js';
import * as b from '../../lib/kernel/netfilter/build.js';
import { nftBackend, legacyBackend } from '../../lib/kernel/netfilter/backend.js';
import { applyNft, diffNft, wantedChains, type NftKernel } from '../../lib/kernel/netfilter/nft/backend.js';
import { ruleKey } from '../../lib/kernel/netfilter/nft/compare.js';
import type { TableState } from '../../lib/kernel/netfilter/spec.js';
import { RuleValidationError } from '../../lib/kernel/netfilter/validate.js';
import { render, type ModelInput, type ServiceInput } from '../../lib/model/index.js';

function kernelError(code: string, message: string): KernelError {
  return new KernelError({ message, code, errno: 0, op: 'nftables.commit', object: 'ruleset', netns: null, extack: null });
}

// structuredClone would turn Buffers into plain Uint8Arrays; the addon hands out Buffers.
function copy<T>(v: T): T {
  if (Buffer.isBuffer(v)) return Buffer.from(v) as T;
  if (Array.isArray(v)) return v.map(copy) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)])) as T;
  return v;
}

class FakeNft implements NftKernel {
  generation = 1;
  private handle = 1n;
  tables: Array<{ family: number; name: string }> = [];
  chains: RawNftChain[] = [];
  rules: RawNftRule[] = [];
  dumps = 0;
  commits = 0;
  /** Called at the start of every commit, before the generation check (another writer). */
  interfere: (() => void) | null = null;

  async dump(request: RawNftDumpRequest): Promise<RawNftDump> {
    this.dumps++;
    const match = (x: { family: number; table?: string; name?: string }) => (request.family ? x.family === request.family : true) && (request.table ? (x.table ?? x.name) === request.table : true);
    return copy({
      generation: this.generation,
      netnsCookie: 1n,
      tables: this.tables.filter((x) => match({ family: x.family, name: x.name })).map((x) => ({ ...x, handle: 1n, flags: 0, userdata: null })),
      chains: this.chains.filter(match),
      rules: this.rules.filter(match),
    });
  }

  async commit(request: RawNftCommitRequest): Promise<RawNftCommitResult> {
    this.commits++;
    this.interfere?.();
    if (request.generation !== null && request.generation !== this.generation) throw kernelError('ERESTART', 'ruleset changed');
    const saved = copy({ tables: this.tables, chains: this.chains, rules: this.rules, handle: this.handle });
    const handles: bigint[] = [];
    try {
      for (const op of request.ops) {
        if (request.echo && op.op === 'addRule') handles.push(this.handle);
        this.run(op);
      }
    } catch (e) {
      Object.assign(this, saved);
      throw e;
    }
    this.generation++;
    return { handles, netnsCookie: 1n };
  }

  private run(op: RawNftOp): void {
    const inTable = (x: { family: number; table: string }) => x.family === op.family && x.table === op.table;
    const hasTable = this.tables.some((x) => x.family === op.family && x.name === op.table);
    if (op.op === 'addTable') {
      if (!hasTable) this.tables.push({ family: op.family, name: op.table });
      return;
    }
    if (!hasTable) throw kernelError('ENOENT', `no table ${op.table}`);
    if (op.op === 'deleteTable') {
      this.tables = this.tables.filter((x) => !(x.family === op.family && x.name === op.table));
      this.chains = this.chains.filter((c) => !inTable(c));
      this.rules = this.rules.filter((r) => !inTable(r));
      return;
    }
    const chain = this.chains.find((c) => inTable(c) && c.name === op.chain);
    if (op.op === 'addChain') {
      if (chain) {
        if (chain.hook !== (op.hook ?? null) || chain.priority !== (op.priority ?? null)) throw kernelError('EEXIST', 'chain exists with another hook');
        return;
      }
      this.chains.push({ family: op.family, table: op.table, name: op.chain, handle: this.handle++, hook: op.hook ?? null, priority: op.priority ?? null, type: op.type ?? null, policy: op.hook !== undefined ? (op.policy ?? 1) : null, userdata: null });
      return;
    }
    if (!chain) throw kernelError('ENOENT', `no chain ${op.chain}`);
    const rulesOf = () => this.rules.filter((r) => inTable(r) && r.chain === op.chain);
    switch (op.op) {
      case 'deleteChain':
        if (this.rules.some((r) => inTable(r) && r.exprs.some((e) => e.chain === op.chain))) throw kernelError('EBUSY', `${op.chain} is still jumped to`);
        this.rules = this.rules.filter((r) => !(inTable(r) && r.chain === op.chain));
        this.chains = this.chains.filter((c) => c !== chain);
        return;
      case 'flushChain':
        this.rules = this.rules.filter((r) => !(inTable(r) && r.chain === op.chain));
        return;
      case 'deleteRule': {
        const i = this.rules.findIndex((r) => inTable(r) && r.chain === op.chain && r.handle === op.handle);
        if (i < 0) throw kernelError('ENOENT', `no rule ${op.handle}`);
        this.rules.splice(i, 1);
        return;
      }
      case 'addRule': {
        for (const e of op.exprs) if (typeof e.chain === 'string' && !this.chains.some((c) => inTable(c) && c.name === e.chain)) throw kernelError('ENOENT', `no chain ${e.chain}`);
        const rule: RawNftRule = { family: op.family, table: op.table, chain: op.chain, handle: this.handle++, userdata: op.userdata ?? null, exprs: op.exprs.map((e) => (e.name === 'counter' ? { ...e, packets: 5n, bytes: 500n } : e)) };
        if (op.position === undefined) {
          const last = rulesOf().at(-1);
          this.rules.splice(last ? this.rules.indexOf(last) + 1 : this.rules.length, 0, rule);
        } else {
          const at = this.rules.findIndex((r) => inTable(r) && r.chain === op.chain && r.handle === op.position);
          if (at < 0) throw kernelError('ENOENT', `no rule ${op.position}`);
          this.rules.splice(at + 1, 0, rule);
        }
        return;
      }
    }
  }

  /** The table as chain name -> rule keys (base chains with their hook), for comparisons. */
  content(family: number): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const c of this.chains.filter((x) => x.family === family)) {
      out[`${c.name}${c.hook !== null ? ` @${c.hook}/${c.priority}/${c.type}` : ''}`] = this.rules.filter((r) => r.family === family && r.chain === c.name).map(ruleKey);
    }
    return out;
  }
}

function wantedContent(states: TableState[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of states) for (const w of wantedChains(s, 'NODENET-')) out[`${w.name}${w.base ? ` @${w.base.hook}/${w.base.priority}/${w.base.type}` : ''}`] = w.rules.map(ruleKey);
  return out;
}

const sortKeys = (o: Record<string, string[]>) => Object.fromEntries(Object.entries(o).sort(([a], [z]) => (a < z ? -1 : a > z ? 1 : 0)));

const filterState: TableState = {
  family: 'ipv4',
  table: 'filter',
  chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.comment('nodenet: drop INVALID'), b.ctstate(['INVALID'])], b.drop())] }],
  jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-DROP-INVALID')) }],
};

t.test('the backend object sits beside the legacy one', async (t) => {
  t.equal(nftBackend.name, 'nftables');
  t.equal(legacyBackend.name, 'iptables-legacy');
  t.type(nftBackend.apply, 'function');
  t.type(nftBackend.diff, 'function');
});

t.test('apply, then apply again: one commit, then none', async (t) => {
  const kernel = new FakeNft();
  const first = await applyNft(filterState, { kernel });
  t.match(first, { committed: true, attempts: 1, lockWaitMs: 0 });
  t.ok(first.lockHoldMs >= 0);
  t.same(first.changes.slice(0, 3), ['+ table ip nodenet', '+ chain ip nodenet filter-input { type filter hook input priority -10; policy accept; }', '+ chain ip nodenet filter-NODENET-DROP-INVALID']);
  t.same(sortKeys(kernel.content(2)), sortKeys(wantedContent([filterState])));
  const again = await applyNft(filterState, { kernel });
  t.same(again, { changes: [], committed: false, attempts: 0, lockWaitMs: 0, lockHoldMs: 0 });
  t.equal(kernel.commits, 1, 'no second commit');
});

t.test('diff reads and plans, never commits', async (t) => {
  const kernel = new FakeNft();
  const d = await diffNft(filterState, { kernel });
  t.equal(d.committed, false);
  t.equal(d.attempts, 0);
  t.ok(d.changes.length > 0);
  t.equal(kernel.commits, 0);
  t.same(kernel.tables, []);
  await applyNft(filterState, { kernel });
  t.same((await diffNft(filterState, { kernel })).changes, [], 'nothing left to do');
});

t.test('ERESTART: read again, plan again, commit again', async (t) => {
  const kernel = new FakeNft();
  let left = 2;
  kernel.interfere = () => {
    if (left-- > 0) kernel.generation++; // another writer committed in between
  };
  const seen: number[] = [];
  const result = await applyNft(filterState, { kernel, beforeCommit: (n) => void seen.push(n) });
  t.match(result, { committed: true, attempts: 3 });
  t.same(seen, [1, 2, 3]);
  t.equal(kernel.dumps, 3, 'a fresh dump for every attempt');
  t.same(sortKeys(kernel.content(2)), sortKeys(wantedContent([filterState])));
});

t.test('ERESTART every time: bounded, then a clear failure', async (t) => {
  const kernel = new FakeNft();
  kernel.interfere = () => void kernel.generation++;
  await t.rejects(applyNft(filterState, { kernel, maxAttempts: 4 }), { name: 'KernelError', code: 'ERESTART', message: /changed under each of 4 commits/ });
  t.equal(kernel.commits, 4);
  t.same(kernel.tables, [], 'nothing half-applied');
});

t.test('other kernel errors are not retried', async (t) => {
  const kernel = new FakeNft();
  kernel.interfere = () => {
    throw kernelError('EPERM', 'Operation not permitted');
  };
  await t.rejects(applyNft(filterState, { kernel }), { code: 'EPERM' });
  t.equal(kernel.commits, 1);
});

t.test('bad input is refused before the kernel is asked anything', async (t) => {
  const bad: Array<[string, TableState, RegExp]> = [
    ['an unknown jump target', { ...filterState, jumps: [{ chain: 'INPUT', rule: b.rule({}, [], b.jump('NODENET-NOPE')) }] }, /must target one of nodenet's chains/],
    ['a chain without the prefix', { ...filterState, chains: [{ name: 'MINE', rules: [] }], jumps: [] }, /named NODENET-\*/],
    ['a match nft cannot express', { ...filterState, chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [b.addrtype({ dst: ['LOCAL', 'BROADCAST'] })], b.drop())] }] }, /filter NODENET-DROP-INVALID rule 1: .*one type per rule/],
    ['a raw payload', { ...filterState, chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({ protocol: 'tcp' }, [{ name: 'tcp', revision: 0, raw: Buffer.alloc(12) }], b.drop())] }] }, /rule 1: -m tcp given as raw bytes/],
    ['a match nodenet does not translate', { ...filterState, chains: [{ name: 'NODENET-DROP-INVALID', rules: [b.rule({}, [{ name: 'statistic', revision: 0, raw: Buffer.alloc(24) }], b.drop())] }] }, /rule 1: -m statistic is not translated/],
    ['a jump rule nft cannot express', { ...filterState, jumps: [{ chain: 'INPUT', rule: b.rule({}, [b.ctstate(['DNAT'])], b.jump('NODENET-DROP-INVALID')) }] }, /filter INPUT \(jump\): --ctstate DNAT/],
    ['a table nodenet does not write', { ...filterState, table: 'broute' }, /nodenet writes only/],
  ];
  for (const [what, state, why] of bad) {
    const kernel = new FakeNft();
    await t.rejects(applyNft(state, { kernel }), why, what);
    await t.rejects(applyNft(state, { kernel }), RuleValidationError, what);
    t.equal(kernel.dumps + kernel.commits, 0, `${what}: no kernel call`);
  }
});

// ---- many states in a row, from the model: every apply converges, every re-apply is a no-op ----

const service = (name: string, ip: string, clusterIP: string, ports: Array<{ protocol: string; port: number }>): ServiceInput => ({
  metadata: { namespace: 'shop', name },
  spec: { type: 'LoadBalancer', clusterIP, clusterIPs: [clusterIP], ports },
  status: { loadBalancer: { ingress: [{ ip }] } },
});

function world(services: ServiceInput[], dropInvalid: boolean, notrack: boolean): ModelInput {
  return {
    config: { dropInvalidInput: dropInvalid, externalCluster: true, externalIPs: false, notrackDns: notrack, dnsServices: [{ namespace: 'kube-system', name: 'kube-dns' }], families: ['ipv4', 'ipv6'], podCidrs: {}, masqueradeBit: 14 },
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services: [{ metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ports: [{ protocol: 'UDP', port: 53 }] } }, ...services],
    dnsEndpointSlices: [],
    node: { metadata: { name: 'n' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
  };
}

t.test('a sequence of model states converges after each apply, and re-applying commits nothing', async (t) => {
  const kernel = new FakeNft();
  const pool = [
    service('a', '203.0.113.1', '10.96.0.21', [{ protocol: 'TCP', port: 80 }]),
    service('b', '203.0.113.2', '10.96.0.22', [{ protocol: 'UDP', port: 53 }, { protocol: 'SCTP', port: 3868 }]),
    service('c', '2001:db8::3', 'fd00:10:96::23', [{ protocol: 'TCP', port: 443 }]),
    service('d', '203.0.113.4', '10.96.0.24', [{ protocol: 'TCP', port: 8080 }, { protocol: 'TCP', port: 8443 }]),
    service('e', '203.0.113.0', '10.96.0.25', [{ protocol: 'TCP', port: 1 }]),
  ];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let step = 0; step < 40; step++) {
    const services = pool.filter(() => random() < 0.5);
    const desired = render(world(services, random() < 0.7, random() < 0.5));
    for (const state of desired.tables) {
      const r = await applyNft(state, { kernel });
      t.equal(r.committed, r.changes.length > 0, `step ${step} ${state.family} ${state.table}: committed exactly when something changed`);
      const again = await applyNft(state, { kernel });
      t.equal(again.committed, false, `step ${step} ${state.family} ${state.table}: nothing left`);
    }
    for (const [family, nf] of [['ipv4', 2], ['ipv6', 10]] as const) {
      t.same(sortKeys(kernel.content(nf)), sortKeys(wantedContent(desired.tables.filter((s) => s.family === family))), `step ${step} ${family}: the kernel holds exactly the desired state`);
      const anyWanted = desired.tables.some((s) => s.family === family && s.chains.length > 0);
      t.equal(kernel.tables.some((x) => x.family === nf), anyWanted, `step ${step} ${family}: the table exists exactly when something is wanted`);
    }
  }
});

t.test('expressions compare by value, whatever order the dump lists attributes in', async (t) => {
  const a: RawNftExpr = { name: 'cmp', sreg: 1, op: 0, data: Buffer.from([1]) };
  const z: RawNftExpr = { name: 'cmp', data: Buffer.from([1]), op: 0, sreg: 1 };
  t.equal(ruleKey({ exprs: [a], userdata: null }), ruleKey({ exprs: [z], userdata: Buffer.alloc(0) }));
  t.not(ruleKey({ exprs: [a], userdata: null }), ruleKey({ exprs: [{ ...a, op: 1 }], userdata: null }));
  t.equal(ruleKey({ exprs: [{ name: 'counter', packets: 1n, bytes: 2n }], userdata: null }), ruleKey({ exprs: [{ name: 'counter', packets: 9n, bytes: 9n }], userdata: null }));
});
