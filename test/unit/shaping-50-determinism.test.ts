// The shaping model is pure: the same inputs give the same output (whatever the order of the
// annotations), inputs are never modified (frozen inputs work), and its files import nothing that
// does I/O and read no clock or randomness.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { desiredShaping, type PreviousShaping, type ShapingPodInput } from '../../lib/model/shaping/index.js';

const dir = join(import.meta.dirname, '../../lib/model/shaping');

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const annotations: Array<[string, string]> = [
  ['nodenet.io/egress-netem', 'delay 100ms 10ms 25% distribution normal loss 1% 25% duplicate 0.1% corrupt 0.01% reorder 25% 50% gap 5 rate 1mbit limit 1000'],
  ['kubernetes.io/egress-bandwidth', '10M'],
  ['nodenet.io/ingress-netem', 'delay 5ms loss 1.5x'],
  ['kubernetes.io/ingress-bandwidth', '100Mi'],
  ['nodenet.io/interface', 'net1'],
  ['nodenet.io/shaping-expires', '1h30m'],
  ['unrelated.example/annotation', 'x'],
];

const now = new Date('2030-01-01T00:10:00.000Z');
const previous = (): PreviousShaping => ({
  interface: 'net1',
  egress: null,
  ingress: { root: { kind: 'netem', netem: { delay: 5_000_000 } }, child: { kind: 'tbf', tbf: { rate: 104_857_600, burst: 131_072, limit: 458_752 } } },
  appliedAt: new Date('2030-01-01T00:00:00.000Z'),
  expiresAt: new Date('2030-01-01T01:30:00.000Z'),
});
const pod = (order: Array<[string, string]>): ShapingPodInput => ({ metadata: { namespace: 'team-a', name: 'web-0', annotations: Object.fromEntries(order) }, spec: { hostNetwork: false } });
const labels = () => ({ 'kubernetes.io/metadata.name': 'team-a', 'nodenet.io/shaping': 'enabled' });

// JSON with Dates as ISO strings: a byte-for-byte comparison of two results.
const json = (x: unknown) => JSON.stringify(x);

t.test('same inputs, same output; annotation order does not matter', async (t) => {
  const reference = json(desiredShaping(pod(annotations), labels(), now, previous()));
  t.equal(json(desiredShaping(pod(annotations), labels(), now, previous())), reference, 'twice');
  for (let shift = 1; shift < annotations.length; shift++) {
    const rotated = [...annotations.slice(shift), ...annotations.slice(0, shift)];
    t.equal(json(desiredShaping(pod(rotated), labels(), now, previous())), reference, `rotated by ${shift}`);
    t.equal(json(desiredShaping(pod([...rotated].reverse()), labels(), now, previous())), reference, `rotated by ${shift}, reversed`);
  }
  const r = JSON.parse(reference) as { egress: unknown; ingress: unknown; kept: unknown; appliedAt: string; expiresAt: string };
  t.strictSame(r.kept, { egress: false, ingress: true }, 'the reference itself is the expected one');
  t.equal(r.appliedAt, '2030-01-01T00:00:00.000Z');
  t.equal(r.expiresAt, '2030-01-01T01:30:00.000Z');
  t.strictSame(r.ingress, previous().ingress);
});

t.test('frozen inputs: nothing is modified, nothing shared with the output', async (t) => {
  const p = deepFreeze(pod(annotations));
  const l = deepFreeze(labels());
  const prev = deepFreeze(previous());
  const before = json({ p, l, prev });
  const r = desiredShaping(p, l, now, prev);
  t.equal(json({ p, l, prev }), before, 'inputs unchanged');
  t.equal(json(r), json(desiredShaping(pod(annotations), labels(), now, previous())), 'same result as unfrozen inputs');
  t.not(r.ingress, prev.ingress);
  t.not(r.ingress?.root, prev.ingress?.root);
  t.not(r.appliedAt, prev.appliedAt);
  t.not(r.expiresAt, prev.expiresAt);
  r.appliedAt?.setTime(0);
  t.equal(prev.appliedAt?.toISOString(), '2030-01-01T00:00:00.000Z', 'mutating the output leaves the previous input alone');
  t.equal(now.toISOString(), '2030-01-01T00:10:00.000Z', 'now is not modified');
});

t.test('every import of every lib/model/shaping file, and no clocks or randomness', async (t) => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  t.ok(files.length >= 8, `found ${files.join(', ')}`);
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    const imports = [...text.matchAll(/^(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)].map((m) => ({ typeOnly: Boolean(m[2]), from: m[3]! }));
    for (const { typeOnly, from } of imports) {
      const sibling = from.startsWith('./') && !from.includes('/', 2);
      const modelTypes = typeOnly && from === '../types.js';
      const kernelTypes = typeOnly && from.startsWith('../../kernel/');
      t.ok(sibling || modelTypes || kernelTypes, `${file}: ${typeOnly ? 'import type' : 'import'} from ${from}`);
      t.ok(from.endsWith('.js'), `${file}: ${from} ends in .js`);
    }
    t.notMatch(text, /\brequire\(|\bimport\(|process\.|Date\.now|new Date\(\)|Math\.random|performance\./, `${file}: no dynamic imports, process state, clocks or randomness`);
  }
});
