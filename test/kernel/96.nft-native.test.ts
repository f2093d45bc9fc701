// The addon's nftables layer (nftDump/nftCommit, libnftnl over netlink, no `nft` process): what it
// commits is what `nft -j` lists inside the namespace, a stale generation is refused with ERESTART
// and changes nothing, a failing op names itself and leaves the ruleset as it was, a batch of
// thousands of ops loses no acknowledgement, and malformed requests never reach the kernel. A cache
// of the ruleset rests on nftGeneration (one generation per committed batch, a cookie per namespace
// that a re-created namespace does not share) and on echo (the handles of the rules a batch added,
// without a dump). Every call goes to a namespace the test creates; the machine's own ruleset is
// never read or written.
import t from 'tap';

import { isKernelError, kernelCall } from '../../lib/kernel/errors.js';
import { native, type RawNftExpr, type RawNftOp } from '../../lib/kernel/native.js';
import { run } from '../helpers/exec.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';

// linux/netfilter.h, linux/netfilter/nf_tables.h
const NFPROTO_IPV4 = 2;
const NF_INET_PRE_ROUTING = 0;
const NF_ACCEPT = 1;
const NFT_REG_VERDICT = 0;
const NFT_REG_1 = 1;
const NFT_JUMP = -3;
const NFT_PAYLOAD_NETWORK_HEADER = 1;
const NFT_CMP_EQ = 0;
const NFT_CT_STATE = 0;
const NFT_NAT_DNAT = 1;

const table = 'nodenet';

/** NFTNL_UDATA_RULE_COMMENT (0): the TLV nft keeps a rule's comment in, NUL included. */
function comment(text: string): Buffer {
  const value = Buffer.from(text + '\0');
  return Buffer.concat([Buffer.from([0, value.length]), value]);
}

const jump = (chain: string): RawNftExpr => ({ name: 'immediate', dreg: NFT_REG_VERDICT, verdict: NFT_JUMP, chain });
const accept: RawNftExpr = { name: 'immediate', dreg: NFT_REG_VERDICT, verdict: NF_ACCEPT };
// ip daddr 10.96.0.10
const daddr: RawNftExpr[] = [
  { name: 'payload', dreg: NFT_REG_1, base: NFT_PAYLOAD_NETWORK_HEADER, offset: 16, len: 4 },
  { name: 'cmp', sreg: NFT_REG_1, op: NFT_CMP_EQ, data: Buffer.from([10, 96, 0, 10]) },
];

function ops(): RawNftOp[] {
  const f = NFPROTO_IPV4;
  return [
    { op: 'addTable', family: f, table },
    { op: 'addChain', family: f, table, chain: 'nat-prerouting', hook: NF_INET_PRE_ROUTING, priority: -100, type: 'nat', policy: NF_ACCEPT },
    { op: 'addChain', family: f, table, chain: 'services' },
    { op: 'addRule', family: f, table, chain: 'nat-prerouting', exprs: [...daddr, { name: 'counter', bytes: 0n, packets: 0n }, jump('services')], userdata: comment('shop/web') },
    {
      op: 'addRule',
      family: f,
      table,
      chain: 'services',
      exprs: [
        { name: 'ct', key: NFT_CT_STATE, dreg: NFT_REG_1 },
        { name: 'bitwise', sreg: NFT_REG_1, dreg: NFT_REG_1, len: 4, mask: Buffer.from([8, 0, 0, 0]), xor: Buffer.alloc(4) },
        { name: 'cmp', sreg: NFT_REG_1, op: 1, data: Buffer.alloc(4) },
        { name: 'immediate', dreg: NFT_REG_1, data: Buffer.from([10, 0, 0, 1]) },
        { name: 'nat', type: NFT_NAT_DNAT, family: NFPROTO_IPV4, reg_addr_min: NFT_REG_1 },
      ],
    },
  ];
}

/** The witness: nft's own JSON listing of everything in the namespace, without its metainfo. */
async function nftRuleset(ns: TestNetns): Promise<unknown[]> {
  const parsed = JSON.parse(await ns.exec('nft', ['-j', 'list', 'ruleset'])) as { nftables: Array<Record<string, unknown>> };
  return parsed.nftables.filter((o) => !('metainfo' in o));
}

async function nftTable(ns: TestNetns, name: string): Promise<Array<Record<string, Record<string, unknown>>>> {
  const parsed = JSON.parse(await ns.exec('nft', ['-j', 'list', 'table', 'ip', name])) as { nftables: Array<Record<string, Record<string, unknown>>> };
  return parsed.nftables.filter((o) => !('metainfo' in o));
}

/** The rejection, as the public API would raise it (a KernelError). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return kernelCall(p).then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

t.test('a committed table is what nft lists, and what nftDump reads back', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  const empty = await addon.nftDump({}, ns.path);
  t.same({ tables: empty.tables, chains: empty.chains, rules: empty.rules }, { tables: [], chains: [], rules: [] });
  t.same(await nftRuleset(ns), [], 'reading created nothing');

  await addon.nftCommit({ generation: empty.generation, ops: ops() }, ns.path);

  const listed = await nftTable(ns, table);
  const chains = listed.filter((o) => 'chain' in o).map((o) => o.chain);
  t.match(chains, [
    { family: 'ip', table, name: 'nat-prerouting', type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' },
    { family: 'ip', table, name: 'services' },
  ]);
  t.notOk('hook' in chains[1]!, 'services is a regular chain');
  const rules = listed.filter((o) => 'rule' in o).map((o) => o.rule!);
  t.equal(rules.length, 2);
  t.match(rules[0], {
    chain: 'nat-prerouting',
    comment: 'shop/web',
    expr: [
      { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '10.96.0.10' } },
      { counter: { packets: 0, bytes: 0 } },
      { jump: { target: 'services' } },
    ],
  });
  t.match(rules[1], { chain: 'services', expr: [{ match: { left: { ct: { key: 'state' } }, right: 'new' } }, { dnat: { addr: '10.0.0.1' } }] });

  const dump = await addon.nftDump({ family: NFPROTO_IPV4, table }, ns.path);
  t.not(dump.generation, empty.generation, 'a new generation');
  t.equal(dump.tables.length, 1);
  t.equal(typeof dump.tables[0]!.handle, 'bigint');
  t.match(dump.chains, [
    { table, name: 'nat-prerouting', hook: NF_INET_PRE_ROUTING, priority: -100, type: 'nat', policy: NF_ACCEPT, userdata: null },
    { table, name: 'services', hook: null, priority: null, type: null, policy: null },
  ]);
  t.equal(dump.rules.length, 2);
  const first = dump.rules[0]!;
  t.same(first.userdata, comment('shop/web'));
  t.same(first.exprs, [...daddr, { name: 'counter', bytes: 0n, packets: 0n }, jump('services')], 'the same expressions, verdict signed');
  // The kernel completes a single-address NAT range: the max register and the "map IPs" flag.
  t.match(dump.rules[1]!.exprs[4], { name: 'nat', type: NFT_NAT_DNAT, family: NFPROTO_IPV4, reg_addr_min: NFT_REG_1, reg_addr_max: NFT_REG_1 });

  // Deleting by handle and deleting the table.
  await addon.nftCommit(
    { generation: dump.generation, ops: [{ op: 'deleteRule', family: NFPROTO_IPV4, table, chain: 'services', handle: dump.rules[1]!.handle }] },
    ns.path,
  );
  t.equal((await nftTable(ns, table)).filter((o) => 'rule' in o).length, 1, 'witness: one rule left');
  await addon.nftCommit({ generation: null, ops: [{ op: 'deleteTable', family: NFPROTO_IPV4, table }] }, ns.path);
  t.same(await nftRuleset(ns), [], 'witness: the table is gone');
});

t.test('a stale generation is refused with ERESTART and changes nothing', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  const read = await addon.nftDump({ rules: false }, ns.path);
  // Another writer commits after nodenet read the ruleset.
  await ns.exec('nft', ['add', 'table', 'ip', 'other']);
  const before = await nftRuleset(ns);

  const error = await rejection(addon.nftCommit({ generation: read.generation, ops: ops() }, ns.path));
  t.ok(isKernelError(error), 'a KernelError');
  if (!isKernelError(error)) return;
  t.equal(error.code, 'ERESTART');
  t.equal(error.errno, 85);
  t.equal(error.op, 'nft.commit');
  t.equal(error.netns, ns.path);
  t.match(error.message, new RegExp(`^nft\\.commit ruleset in netns ${ns.path}: generation ${read.generation} is no longer current`));
  t.same(await nftRuleset(ns), before, 'witness: nothing changed');

  // Read again, retry: it goes through.
  const fresh = await addon.nftDump({ rules: false }, ns.path);
  await addon.nftCommit({ generation: fresh.generation, ops: ops() }, ns.path);
  t.equal((await nftTable(ns, table)).filter((o) => 'rule' in o).length, 2);
});

t.test('a failing op names itself and leaves the ruleset as it was', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  await addon.nftCommit({ generation: null, ops: ops() }, ns.path);
  const before = await nftRuleset(ns);
  const f = NFPROTO_IPV4;
  const error = await rejection(
    addon.nftCommit(
      {
        generation: null,
        ops: [
          { op: 'addChain', family: f, table, chain: 'more' },
          { op: 'addRule', family: f, table, chain: 'more', exprs: [accept] },
          { op: 'addRule', family: f, table, chain: 'more', exprs: [jump('no-such-chain')] },
          { op: 'addRule', family: f, table, chain: 'services', exprs: [accept] },
        ],
      },
      ns.path,
    ),
  );
  t.ok(isKernelError(error), 'a KernelError');
  if (!isKernelError(error)) return;
  t.equal(error.code, 'ENOENT');
  t.equal(error.object, `table ip ${table} chain more rule 2`);
  t.equal(
    error.message,
    `nft.commit table ip ${table} chain more rule 2 in netns ${ns.path}: addRule (op 3 of 4) failed, so the batch was not applied: ` +
      'No such file or directory (ENOENT)' +
      (error.extack ? `: ${error.extack}` : ''),
  );
  t.same(await nftRuleset(ns), before, 'witness: nothing changed, not even the chain the batch created first');

  const missing = await rejection(addon.nftCommit({ generation: null, ops: [{ op: 'deleteTable', family: f, table: 'absent' }] }, ns.path));
  t.match(missing, { code: 'ENOENT', object: 'table ip absent', op: 'nft.commit' });
});

t.test('a batch with more acknowledgements than a default socket buffer holds commits whole', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  const f = NFPROTO_IPV4;
  const count = 2000;
  const batch: RawNftOp[] = [{ op: 'addTable', family: f, table }, { op: 'addChain', family: f, table, chain: 'many' }];
  for (let i = 0; i < count; i++) {
    const address = Buffer.from([10, 96, (i >> 8) & 255, i & 255]);
    batch.push({ op: 'addRule', family: f, table, chain: 'many', exprs: [daddr[0]!, { ...daddr[1]!, data: address }, accept], userdata: comment(`rule ${i}`) });
  }
  await addon.nftCommit({ generation: null, ops: batch }, ns.path);
  const rules = (await nftTable(ns, table)).filter((o) => 'rule' in o).map((o) => o.rule!);
  t.equal(rules.length, count, 'witness: every rule');
  t.match(rules[count - 1], { comment: `rule ${count - 1}`, expr: [{ match: { right: '10.96.7.207' } }, { accept: null }] });
  const dump = await addon.nftDump({ family: f, table }, ns.path);
  t.equal(dump.rules.length, count);
});

t.test('nftGeneration: the generation a dump reads, one more per committed batch, and a cookie per namespace', async (t) => {
  const ns = await makeNetns(t);
  const other = await makeNetns(t);
  const addon = native();

  const first = await addon.nftGeneration(ns.path);
  t.equal(typeof first.generation, 'number');
  t.equal(typeof first.netnsCookie, 'bigint');
  const dump = await addon.nftDump({ rules: false }, ns.path);
  t.equal(dump.generation, first.generation, 'the generation a dump right after reads');
  t.equal(dump.netnsCookie, first.netnsCookie, 'the dump names the same namespace');

  const committed = await addon.nftCommit({ generation: first.generation, ops: ops() }, ns.path);
  t.same(committed, { handles: [], netnsCookie: first.netnsCookie }, 'without echo: no handles, the same namespace');
  const second = await addon.nftGeneration(ns.path);
  t.equal(second.generation, first.generation + 1, 'one batch of five ops: one generation');
  await addon.nftCommit({ generation: second.generation, ops: [{ op: 'addChain', family: NFPROTO_IPV4, table, chain: 'more' }] }, ns.path);
  await addon.nftCommit({ generation: null, ops: [{ op: 'deleteTable', family: NFPROTO_IPV4, table }] }, ns.path);
  const fourth = await addon.nftGeneration(ns.path);
  t.equal(fourth.generation, first.generation + 3, 'two more batches: two more generations');
  t.same(await addon.nftCommit({ generation: null, ops: [] }, ns.path), { handles: [], netnsCookie: first.netnsCookie }, 'an empty batch');
  t.equal((await addon.nftGeneration(ns.path)).generation, fourth.generation, 'sends nothing');
  t.equal(fourth.netnsCookie, first.netnsCookie, 'the same namespace, the same cookie');

  const elsewhere = await addon.nftGeneration(other.path);
  t.not(elsewhere.netnsCookie, first.netnsCookie, 'another namespace, another cookie');
  t.equal((await addon.nftGeneration(other.path)).netnsCookie, elsewhere.netnsCookie);

  // The same name and path, a new namespace: its cookie is new (its generation may well repeat).
  await run('ip', ['netns', 'del', ns.name]);
  await run('ip', ['netns', 'add', ns.name]);
  const recreated = await addon.nftGeneration(ns.path);
  t.not(recreated.netnsCookie, first.netnsCookie, 'a re-created namespace has a new cookie');
  t.not(recreated.netnsCookie, elsewhere.netnsCookie);
  t.equal((await addon.nftDump({}, ns.path)).netnsCookie, recreated.netnsCookie);

  const error = await rejection(addon.nftGeneration('/var/run/netns/nnt-no-such-namespace'));
  t.match(error, { op: 'nft.generation', netns: '/var/run/netns/nnt-no-such-namespace' });
});

t.test('with echo, a batch returns the handle of every rule it added, in op order', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  const f = NFPROTO_IPV4;
  const setup = ops();
  const created = await addon.nftCommit({ generation: null, ops: setup, echo: true }, ns.path);
  const cookie = (await addon.nftGeneration(ns.path)).netnsCookie;
  t.equal(created.netnsCookie, cookie);
  t.equal(created.handles.length, 2, 'one handle per addRule, none for tables and chains');
  let dump = await addon.nftDump({ family: f, table }, ns.path);
  t.same(
    dump.rules.map((r) => r.handle),
    created.handles,
  );
  const [prerouting, service] = created.handles as [bigint, bigint];

  const tagged = (chain: string, tag: string, position?: bigint): RawNftOp => ({
    op: 'addRule',
    family: f,
    table,
    chain,
    exprs: [...daddr, { name: 'counter', bytes: 0n, packets: 0n }, accept],
    userdata: comment(tag),
    ...(position === undefined ? {} : { position }),
  });
  const batch: RawNftOp[] = [
    tagged('services', 'appended'),
    tagged('services', 'after-service', service),
    { op: 'addChain', family: f, table, chain: 'more' },
    tagged('more', 'in-a-new-chain'),
    { op: 'deleteRule', family: f, table, chain: 'nat-prerouting', handle: prerouting },
    tagged('nat-prerouting', 'after-a-deleted-one'),
    tagged('services', 'first-appended-again'),
    { op: 'addRule', family: f, table, chain: 'more', exprs: [jump('services')], userdata: comment('jump') },
  ];
  const added = await addon.nftCommit({ generation: dump.generation, ops: batch, echo: true }, ns.path);
  const addRules = batch.filter((op) => op.op === 'addRule');
  t.equal(added.handles.length, addRules.length);
  t.equal(new Set(added.handles).size, added.handles.length, 'distinct handles');

  dump = await addon.nftDump({ family: f, table }, ns.path);
  const byHandle = new Map(dump.rules.map((r) => [r.handle, r]));
  addRules.forEach((op, i) => {
    const rule = byHandle.get(added.handles[i]!);
    t.ok(rule, `the dump holds rule ${i} by its echoed handle`);
    t.same({ chain: rule?.chain, userdata: rule?.userdata, exprs: rule?.exprs }, { chain: op.chain, userdata: op.userdata, exprs: op.exprs }, `handle ${added.handles[i]}: op ${i}'s rule`);
  });
  const order = (chain: string) => dump.rules.filter((r) => r.chain === chain).map((r) => r.handle);
  const [appended, afterService, , , firstAppendedAgain] = added.handles;
  t.same(order('services'), [service, afterService, appended, firstAppendedAgain], 'inserted after its position; appends at the end');
  t.same(order('more'), [added.handles[2], added.handles[5]]);
  t.same(order('nat-prerouting'), [added.handles[3]]);

  // Without echo, or with echo and nothing added: no handles.
  const plain = await addon.nftCommit({ generation: null, ops: [tagged('services', 'plain')] }, ns.path);
  t.same(plain, { handles: [], netnsCookie: cookie });
  const deleted = await addon.nftCommit({ generation: null, ops: [{ op: 'deleteRule', family: f, table, chain: 'services', handle: appended! }], echo: true }, ns.path);
  t.same(deleted, { handles: [], netnsCookie: cookie });
});

t.test('with echo, a batch of thousands of rules returns every handle', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  const f = NFPROTO_IPV4;
  const count = 10000;
  const batch: RawNftOp[] = [{ op: 'addTable', family: f, table }, { op: 'addChain', family: f, table, chain: 'many' }];
  for (let i = 0; i < count; i++) {
    const address = Buffer.from([10, 96, (i >> 8) & 255, i & 255]);
    batch.push({ op: 'addRule', family: f, table, chain: 'many', exprs: [daddr[0]!, { ...daddr[1]!, data: address }, accept], userdata: comment(`rule ${i}`) });
  }
  const result = await addon.nftCommit({ generation: null, ops: batch, echo: true }, ns.path);
  t.equal(result.handles.length, count);
  const dump = await addon.nftDump({ family: f, table }, ns.path);
  t.same(dump.rules.map((r) => r.handle), result.handles, 'appended in op order: the dump lists the same handles in the same order');
  t.same(dump.rules[count - 1]!.userdata, comment(`rule ${count - 1}`));
});

t.test('with echo, a failing batch rejects as before and changes nothing', async (t) => {
  const ns = await makeNetns(t);
  const addon = native();
  const f = NFPROTO_IPV4;
  await addon.nftCommit({ generation: null, ops: ops() }, ns.path);
  const before = await nftRuleset(ns);
  const generation = (await addon.nftGeneration(ns.path)).generation;

  const error = await rejection(
    addon.nftCommit(
      {
        generation: null,
        echo: true,
        ops: [
          { op: 'addRule', family: f, table, chain: 'services', exprs: [accept] },
          { op: 'deleteRule', family: f, table, chain: 'services', handle: 999999n },
          { op: 'addRule', family: f, table, chain: 'services', exprs: [accept] },
        ],
      },
      ns.path,
    ),
  );
  t.ok(isKernelError(error), 'a KernelError');
  if (!isKernelError(error)) return;
  t.equal(error.code, 'ENOENT');
  t.equal(error.object, `table ip ${table} chain services rule handle 999999`);
  t.match(error.message, /deleteRule \(op 2 of 3\) failed, so the batch was not applied: No such file or directory \(ENOENT\)/);
  t.same(await nftRuleset(ns), before, 'witness: nothing changed');
  t.equal((await addon.nftGeneration(ns.path)).generation, generation, 'no new generation');

  await ns.exec('nft', ['add', 'table', 'ip', 'other']);
  const stale = await rejection(addon.nftCommit({ generation, echo: true, ops: [{ op: 'addRule', family: f, table, chain: 'services', exprs: [accept] }] }, ns.path));
  t.match(stale, { code: 'ERESTART', op: 'nft.commit' });
  t.equal((await nftTable(ns, table)).filter((o) => 'rule' in o).length, 2, 'witness: no rule added');
});

t.test('malformed requests are TypeErrors or RangeErrors, before any kernel call', async (t) => {
  // Every call still names a test namespace: should validation ever let one through, the kernel
  // call lands there, not in the machine's own ruleset.
  const ns = await makeNetns(t);
  const native_ = native();
  const addon = {
    nftCommit: (request: Parameters<typeof native_.nftCommit>[0]) => native_.nftCommit(request, ns.path),
    nftDump: (request: Parameters<typeof native_.nftDump>[0]) => native_.nftDump(request, ns.path),
  };
  const rule = (exprs: unknown[]): never => ({ generation: null, ops: [{ op: 'addRule', family: NFPROTO_IPV4, table, chain: 'c', exprs }] }) as never;
  const throwsSync = (f: () => unknown, type: ErrorConstructor, message: RegExp) => {
    try {
      f();
      t.fail(`expected a ${type.name}`);
    } catch (e) {
      t.type(e, type);
      t.match((e as Error).message, message);
    }
  };
  throwsSync(() => addon.nftCommit(rule([{ name: 'payload', dreg: 1, colour: 3 }])), TypeError, /exprs\[0\]\.colour is not an attribute of payload \(it has: dreg, base, offset, len/);
  throwsSync(() => addon.nftCommit(rule([{ name: 'meta', key: '3' }])), TypeError, /exprs\[0\]\.key must be a number/);
  throwsSync(() => addon.nftCommit(rule([{ name: 'counter', bytes: 1 }])), TypeError, /bytes must be a bigint/);
  throwsSync(() => addon.nftCommit(rule([{ name: 'cmp', data: 'abc' }])), TypeError, /data must be a Buffer/);
  throwsSync(() => addon.nftCommit(rule([{ name: 'ct', dir: 256 }])), RangeError, /dir must be from 0 to 255/);
  throwsSync(() => addon.nftCommit(rule([{ name: 'no-such-expr' }])), TypeError, /"no-such-expr" is not an expression nodenet can build/);
  throwsSync(() => addon.nftCommit(rule([{ name: 'immediate', dreg: 0, verdict: -3, chain: 'x', data: Buffer.alloc(4) }])), TypeError, /not both/);
  throwsSync(() => addon.nftCommit({ generation: null, ops: [{ op: 'renameTable', family: 2, table }] } as never), TypeError, /"renameTable" is not one of/);
  throwsSync(() => addon.nftCommit({ generation: null, ops: [{ op: 'deleteRule', family: 2, table, chain: 'c', handle: 3 }] } as never), TypeError, /handle must be a bigint/);
  throwsSync(() => addon.nftCommit({ generation: null, ops: [{ op: 'addChain', family: 2, table, chain: 'c', hook: 0 }] } as never), TypeError, /hook and priority together/);
  throwsSync(() => addon.nftCommit({ generation: -1, ops: [] } as never), RangeError, /generation must be from 0/);
  throwsSync(() => addon.nftDump({ table: '' }), RangeError, /table must be 1-255 bytes/);
  throwsSync(() => addon.nftDump({ rules: 'yes' } as never), TypeError, /rules must be a boolean/);
  throwsSync(() => addon.nftCommit({ generation: null, ops: [], echo: 1 } as never), TypeError, /request\.echo must be a boolean/);
  throwsSync(() => native_.nftGeneration(42 as never), TypeError, /nftGeneration: netns must be a string/);
});
