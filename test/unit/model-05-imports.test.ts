// lib/model is pure: it imports the kernel layer's types (type-only) and its rule builders, and
// nothing else outside lib/model — no addon, no node: modules, no controller, no I/O.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

const dir = join(import.meta.dirname, '../../lib/model');
// Sub-models (shaping/, overlays/) are held to the same rules, one directory further down.
const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
const SUBDIRS = ['shaping', 'overlays'];

t.test('every import of every lib/model file', async (t) => {
  t.ok(files.length >= 8, `found ${files.join(', ')}`);
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    const imports = [...text.matchAll(/^(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm)].map((m) => ({ typeOnly: Boolean(m[2]), from: m[3]! }));
    const nested = file.includes('/');
    const up = nested ? '../../' : '../';
    for (const { typeOnly, from } of imports) {
      const sibling = from.startsWith('./') && !from.includes('/', 2);
      const intoSubmodel = !nested && SUBDIRS.some((d) => from.startsWith(`./${d}/`) && !from.includes('/', d.length + 3));
      const parentModel = nested && from.startsWith('../') && !from.includes('/', 3) && !from.startsWith('../../');
      const allowed =
        sibling || intoSubmodel || parentModel || from === `${up}kernel/netfilter/build.js` || (typeOnly && from.startsWith(`${up}kernel/`));
      t.ok(allowed, `${file}: ${typeOnly ? 'import type' : 'import'} from ${from}`);
      t.ok(from.startsWith('.') ? from.endsWith('.js') : true, `${file}: ${from} ends in .js`);
    }
    t.notMatch(text, /\brequire\(|\bimport\(|process\.|Date\.now|Math\.random/, `${file}: no dynamic imports, process state, clocks or randomness`);
  }
});

t.test('the one kernel module imported for its values imports only types itself', async (t) => {
  const build = readFileSync(join(dir, '../kernel/netfilter/build.ts'), 'utf8');
  const imports = [...build.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']+)'/gm)];
  t.ok(imports.length > 0);
  for (const m of imports) t.ok(m[1], `build.ts imports ${m[2]} type-only`);
});
