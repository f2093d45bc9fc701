// Rules remembered by identity: only deeply frozen ones, so the bytes the addon gets and the checks
// made are always those of the rule as it is now. A mutable rule edited between two encodings must
// come out as edited; a frozen one must come out exactly as an equal mutable one does.
import t from 'tap';

import * as b from '../../lib/kernel/netfilter/build.js';
import { RuleWireWriter } from '../../lib/kernel/netfilter/encode.js';
import { deepFreeze, isDeepFrozen } from '../../lib/kernel/netfilter/frozen.js';
import type { RuleSpec, TableState } from '../../lib/kernel/netfilter/spec.js';
import type { IpFamily } from '../../lib/kernel/netfilter/types.js';
import { RuleValidationError, validateTableState } from '../../lib/kernel/netfilter/validate.js';

const bytes = (rules: RuleSpec[], family: IpFamily = 'ipv4'): Buffer => {
  const w = new RuleWireWriter(family);
  w.begin(rules.length);
  for (const r of rules) t.equal(w.rule(r), null);
  return Buffer.from(w.finish());
};

const dnatRule = (port: number) => b.rule({ source: '10.244.0.0/16', destination: '203.0.113.7', protocol: 'tcp' }, [b.comment('shop/web'), b.tcp({ dport: port })], b.dnat('10.96.0.7', port));

t.test('isDeepFrozen and deepFreeze', async (t) => {
  const r = dnatRule(80);
  t.notOk(isDeepFrozen(r), 'a built rule is mutable');
  t.notOk(isDeepFrozen(Object.freeze({ ...r })), 'a frozen rule with mutable matches is not deeply frozen');
  t.equal(deepFreeze(r), r, 'deepFreeze returns its argument');
  t.ok(isDeepFrozen(r), 'and freezes all of it');
  t.throws(() => {
    (r.matches![1]!.options as { destinationPorts: unknown }).destinationPorts = null;
  }, TypeError, 'so an edit throws instead of going unseen');
  const raw = deepFreeze({ ...dnatRule(80), matches: [{ name: 'foo', raw: Buffer.from([1, 2, 3]) }] });
  t.notOk(isDeepFrozen(raw), 'a rule holding a Buffer never counts as frozen (its bytes can change)');
});

t.test('a frozen rule encodes as its mutable twin, the first time and from memory', async (t) => {
  for (const family of ['ipv4', 'ipv6'] as const) {
    const rules = family === 'ipv4' ? [dnatRule(80), dnatRule(81)] : [b.rule({ destination: 'fd00::7', protocol: 'udp' }, [b.udp({ dport: 53 })], b.accept())];
    const expected = bytes(rules, family);
    const frozen = rules.map((r) => deepFreeze(structuredClone(r)));
    t.same(bytes(frozen, family), expected, `${family}: first encoding`);
    t.same(bytes(frozen, family), expected, `${family}: remembered`);
    t.same(bytes([...frozen, ...frozen], family), Buffer.concat([expected, expected]), `${family}: remembered twice in one chain`);
  }
});

t.test('a mutable rule edited between encodings comes out as edited', async (t) => {
  const r = dnatRule(80);
  const before = bytes([r]);
  r.matches![1] = b.tcp({ dport: 8080 });
  const after = bytes([r]);
  t.not(after.toString('hex'), before.toString('hex'), 'new bytes');
  const edited = dnatRule(80);
  edited.matches![1] = b.tcp({ dport: 8080 });
  t.same(after, bytes([edited]), 'the bytes of the edited rule');
});

t.test('a frozen rule validated in one place is validated again in another', async (t) => {
  const masquerade = deepFreeze(b.rule({ protocol: 'tcp' }, [b.tcp({ dport: 80 })], b.dnat('10.96.0.7', 80)));
  const state = (chain: string): TableState => ({
    family: 'ipv4',
    table: 'nat',
    chains: [{ name: 'NODENET-X', rules: [masquerade] }],
    jumps: [{ chain, rule: b.rule({}, [], b.jump('NODENET-X')) }],
  });
  t.doesNotThrow(() => validateTableState(state('PREROUTING'), 'NODENET-'), 'DNAT reached from PREROUTING');
  t.throws(() => validateTableState(state('POSTROUTING'), 'NODENET-'), RuleValidationError, 'the same object reached from POSTROUTING is refused');
  t.throws(() => validateTableState({ ...state('PREROUTING'), table: 'filter', jumps: [] }, 'NODENET-'), RuleValidationError, 'and in filter');
});
