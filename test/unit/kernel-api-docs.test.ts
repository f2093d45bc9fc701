// docs/kernel-api.md documents the public embedding API (nodenet/kernel = lib/kernel/index.ts):
// every runtime export and every type a consumer can name has a `###` entry, and no entry names
// something that is not exported (stale documentation fails).
//
// Runtime exports are found by walking the module itself; type exports by asking the TypeScript
// compiler about lib/kernel/index.ts. A namespace re-export (`export * as links`) is a `## `
// section; a nested namespace object (netfilter.build) and each of its members get entries of
// their own; a plain object of functions (netfilter.legacyBackend) is one entry that must mention
// each of its keys. A namespace type that is the same declaration as a top-level type export
// (links.Link is Link) is documented by the top-level entry, which must mention the qualified name.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';
import ts from 'typescript';

import * as kernel from '../../lib/kernel/index.js';

const root = join(import.meta.dirname, '..', '..');
const docPath = join(root, 'docs', 'kernel-api.md');
const entryPath = join(root, 'lib', 'kernel', 'index.ts');

// ---- the document --------------------------------------------------------------------------

interface Entry {
  /** The heading text after `### `. */
  heading: string;
  /** The qualified name it documents: `links.create` for `### links.create(options)`. */
  name: string;
  /** Everything up to the next `## ` or `### ` heading. */
  body: string;
  line: number;
}

interface Doc {
  sections: string[];
  entries: Entry[];
}

function parseDoc(markdown: string): Doc {
  const sections: string[] = [];
  const entries: Entry[] = [];
  let current: Entry | null = null;
  let fenced = false;
  markdown.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : line.match(/^(#{2,3}) (.*)$/);
    if (!heading) {
      if (current) current.body += line + '\n';
      return;
    }
    const text = heading[2]!.trim();
    current = null;
    if (heading[1] === '##') {
      sections.push(text);
      return;
    }
    const name = text.replace(/`/g, '').match(/^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*/)?.[0] ?? '';
    current = { heading: text, name, body: '', line: i + 1 };
    entries.push(current);
  });
  return { sections, entries };
}

const doc = parseDoc(readFileSync(docPath, 'utf8'));
const entriesByName = new Map<string, Entry[]>();
for (const e of doc.entries) entriesByName.set(e.name, [...(entriesByName.get(e.name) ?? []), e]);
const mentions = (entry: Entry, name: string) => entry.body.includes('`' + name + '`') || entry.body.includes('`' + name + '(');

// ---- runtime exports -----------------------------------------------------------------------

type RuntimeKind = 'namespace' | 'function' | 'class' | 'object' | 'constant';

interface RuntimeExport {
  path: string;
  kind: RuntimeKind;
  /** A top-level namespace: documented by a `## ` section rather than a `### ` entry. */
  section: boolean;
  keys: string[];
}

function isModuleNamespace(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Module]';
}

function kindOf(value: unknown): RuntimeKind {
  if (isModuleNamespace(value)) return 'namespace';
  if (typeof value === 'function') return /^class[\s{]/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) return 'object';
  return 'constant';
}

function runtimeExports(module: Record<string, unknown>, prefix = ''): RuntimeExport[] {
  return Object.keys(module).flatMap((key) => {
    const value = module[key];
    const path = prefix + key;
    const kind = kindOf(value);
    const keys = kind === 'object' ? Object.keys(value as object) : [];
    const self: RuntimeExport = { path, kind, section: kind === 'namespace' && prefix === '', keys };
    return kind === 'namespace' ? [self, ...runtimeExports(value as Record<string, unknown>, path + '.')] : [self];
  });
}

const runtime = runtimeExports(kernel as unknown as Record<string, unknown>);

// ---- type exports, from the compiler -------------------------------------------------------

interface TypeExport {
  path: string;
  /** The declaration symbol, to recognise the same type exported under two names. */
  target: ts.Symbol;
}

function compilerView(): { topTypes: TypeExport[]; namespaceTypes: TypeExport[]; values: Map<string, string[]> } {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const program = ts.createProgram([entryPath], { ...parsed.options, noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entryPath);
  const moduleSymbol = source && checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`the compiler cannot see ${entryPath} as a module`);

  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const typeOnly = (s: ts.Symbol) =>
    !(resolve(s).flags & ts.SymbolFlags.Value) || (s.declarations ?? []).some((d) => ts.isTypeOnlyImportOrExportDeclaration(d));
  const isNamespace = (s: ts.Symbol) => !typeOnly(s) && (resolve(s).flags & ts.SymbolFlags.ValueModule) !== 0;

  const topTypes: TypeExport[] = [];
  const namespaceTypes: TypeExport[] = [];
  // Value exports per module ('' for the top level), to cross-check the runtime walk.
  const values = new Map<string, string[]>();
  const walk = (module: ts.Symbol, prefix: string) => {
    const names: string[] = [];
    for (const s of checker.getExportsOfModule(module)) {
      const path = prefix + s.name;
      if (typeOnly(s)) {
        (prefix === '' ? topTypes : namespaceTypes).push({ path, target: resolve(s) });
        continue;
      }
      names.push(s.name);
      if (isNamespace(s)) walk(resolve(s), path + '.');
    }
    values.set(prefix.replace(/\.$/, ''), names.sort());
  };
  walk(moduleSymbol, '');
  return { topTypes, namespaceTypes, values };
}

const { topTypes, namespaceTypes, values } = compilerView();

// ---- the checks ----------------------------------------------------------------------------

t.test('the walks found the API', async (t) => {
  t.ok(runtime.filter((r) => r.section).length >= 9, 'namespaces: links, fdb, linkMonitor, netfilter, qdiscs, routes, runtime, conntrack, sysctl');
  t.ok(runtime.filter((r) => !r.section).length >= 60, `${runtime.length} runtime exports`);
  t.ok(topTypes.length >= 15, `${topTypes.length} top-level type exports`);
  t.ok(namespaceTypes.length >= 50, `${namespaceTypes.length} type exports inside namespaces`);
});

t.test('the compiler and the loaded module agree on the runtime exports', async (t) => {
  const loaded = new Map<string, string[]>([['', Object.keys(kernel).sort()]]);
  for (const r of runtime) {
    if (r.kind === 'namespace') loaded.set(r.path, Object.keys(r.path.split('.').reduce<any>((o, k) => o[k], kernel)).sort());
  }
  t.same([...loaded.keys()].sort(), [...values.keys()].sort(), 'the same namespaces');
  for (const [path, names] of loaded) t.same(names, values.get(path), `exports of ${path || 'nodenet/kernel'}`);
});

t.test('every namespace has its section', async (t) => {
  for (const r of runtime.filter((r) => r.section)) t.ok(doc.sections.includes(r.path), `## ${r.path}`);
});

t.test('every runtime export has one entry', async (t) => {
  for (const r of runtime.filter((r) => !r.section)) {
    const found = entriesByName.get(r.path) ?? [];
    t.equal(found.length, 1, `### ${r.path} (${r.kind})`);
    const entry = found[0];
    if (!entry) continue;
    if (r.kind === 'function') t.match(entry.heading, /\(.*\)/, `${r.path}: the heading shows its parameters`);
    else t.notMatch(entry.heading, /\(/, `${r.path}: a ${r.kind} heading has no parameter list`);
    for (const key of r.keys) t.ok(mentions(entry, key), `${r.path}: the entry mentions its member \`${key}\``);
  }
});

t.test('every type a consumer can name has an entry', async (t) => {
  const topByTarget = new Map(topTypes.map((x) => [x.target, x.path]));
  for (const x of topTypes) t.equal(entriesByName.get(x.path)?.length ?? 0, 1, `### ${x.path}`);
  for (const x of namespaceTypes) {
    const top = topByTarget.get(x.target);
    if (top !== undefined) {
      const entry = entriesByName.get(top)?.[0];
      t.ok(entry && mentions(entry, x.path), `### ${top} mentions \`${x.path}\` (the same type)`);
    } else {
      t.equal(entriesByName.get(x.path)?.length ?? 0, 1, `### ${x.path}`);
    }
  }
});

t.test('no entry for anything that is not exported', async (t) => {
  const topTargets = new Set(topTypes.map((x) => x.target));
  const documentable = new Set([
    ...runtime.filter((r) => !r.section).map((r) => r.path),
    ...topTypes.map((x) => x.path),
    ...namespaceTypes.filter((x) => !topTargets.has(x.target)).map((x) => x.path),
  ]);
  for (const e of doc.entries) t.ok(documentable.has(e.name), `line ${e.line}: ### ${e.heading} names an export`);
});

t.test('every entry says something', async (t) => {
  for (const e of doc.entries) t.ok(e.body.replace(/\s+/g, '').length >= 30, `line ${e.line}: ### ${e.heading} has a description`);
});
