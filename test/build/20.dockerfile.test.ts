// The Dockerfile, which no CI machine can build (there is no container engine): dockerfile-utils
// lints it, its build stage's shell steps run for each target against stub commands, and its
// runtime stage is held to the libraries the x64 prebuilt addon really links against.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';

import { validate } from 'dockerfile-utils';
import t from 'tap';

import { requireArtifact } from '../helpers/artifacts.js';
import { repoRoot } from '../helpers/dist.js';
import { run, runAllowingFailure } from '../helpers/exec.js';

const dockerfilePath = join(repoRoot, 'Dockerfile');
const dockerfile = readFileSync(dockerfilePath, 'utf8');
const linter = join(repoRoot, 'node_modules', '.bin', 'dockerfile-utils');
const x64Prebuild = join(repoRoot, 'prebuilds', 'linux-x64', 'nodenet.napi.glibc.node');

const runtimePackages = readFileSync(join(repoRoot, 'native', 'runtime-packages.txt'), 'utf8')
  .split('\n')
  .map((line) => line.replace(/#.*/, '').trim())
  .filter((line) => line !== '');

// Base image packages (node itself needs them), never named in runtime-packages.txt.
const BASE_PACKAGES = new Set(['libc6', 'libstdc++6', 'libgcc-s1']);
const BUILD_TOOL = /^(g\+\+|gcc|cpp|clang|make|cmake|ninja-build|pkg-config|pkgconf|python3?|binutils|build-essential)([-:].*)?$|-dev(:\w+)?$|-cross$/;

// --- a small Dockerfile reader: logical instructions (continuations joined, comments dropped), split into stages

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  from: Instruction;
  name: string | undefined;
  platform: string | undefined;
  instructions: Instruction[];
}

function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/\s+$/, '');
    // Docker drops comment and empty lines inside a continued instruction as well as between them.
    if (/^\s*#/.test(line) || line === '') return;
    // It removes the backslash and the newline and nothing else, as the shell would.
    const continued = line.endsWith('\\');
    const part = continued ? line.slice(0, -1) : line;
    if (pending) pending.text += part;
    else pending = { text: part.trimStart(), line: index + 1 };
    if (continued) return;
    const match = /^(\S+)\s*([\s\S]*)$/.exec(pending.text);
    if (match) out.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: pending.line });
    pending = undefined;
  });
  return out;
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  for (const instruction of instructions(text)) {
    if (instruction.keyword === 'FROM') {
      const platform = /--platform=(\S+)/.exec(instruction.args)?.[1];
      const name = /\sAS\s+(\S+)\s*$/i.exec(instruction.args)?.[1];
      out.push({ from: instruction, name, platform, instructions: [] });
    } else {
      const stage = out.at(-1);
      if (!stage) throw new Error(`line ${instruction.line}: ${instruction.keyword} before any FROM`);
      stage.instructions.push(instruction);
    }
  }
  return out;
}

/** Every package an `apt-get install` in these RUN instructions names (options dropped). */
function aptInstalls(stage: Stage): string[] {
  const packages: string[] = [];
  for (const { keyword, args } of stage.instructions) {
    if (keyword !== 'RUN') continue;
    for (const command of args.split(/&&|\|\||;/)) {
      const match = /\bapt-get\s+install\b([\s\S]*)/.exec(command);
      if (match) packages.push(...match[1]!.trim().split(/\s+/).filter((w) => w !== '' && !w.startsWith('-')));
    }
  }
  return packages;
}

/** COPY instructions: flags, sources and destination (shell form only; the Dockerfile uses no JSON-form COPY). */
function copies(stage: Stage): { from: string | undefined; sources: string[]; dest: string; line: number }[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/).filter((w) => w !== '');
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.map((f) => /^--from=(.+)$/.exec(f)?.[1]).find((f) => f !== undefined);
      return { from, sources: paths.slice(0, -1), dest: paths.at(-1) ?? '', line: i.line };
    });
}

/** The WORKDIR in force before the instruction at `line`. */
function workdirAt(stage: Stage, line: number): string {
  let dir = '/';
  for (const i of stage.instructions) if (i.keyword === 'WORKDIR' && i.line < line) dir = posix.resolve(dir, i.args.trim());
  return dir;
}

/** .dockerignore patterns as regular expressions over context-relative paths (a pattern also excludes what is below it). */
function dockerignore(): RegExp[] {
  const path = join(repoRoot, '.dockerignore');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((pattern) => {
      if (pattern.startsWith('!')) throw new Error(`.dockerignore exception ${pattern}: teach this test about it`);
      const body = pattern
        .replace(/^\/+|\/+$/g, '')
        .split(/(\*\*\/?|\*|\?)/)
        .map((piece) => (piece === '**' || piece === '**/' ? '(.*/)?' : piece === '*' ? '[^/]*' : piece === '?' ? '[^/]' : piece.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('');
      return new RegExp(`^${body}(/.*)?$`);
    });
}

const parsed = stages(dockerfile);
const finalStage = parsed.at(-1)!;
const buildStage = parsed.find((s) => s.name === 'build');

t.test('dockerfile-utils finds no problem in the Dockerfile, and does find them in a bad one', async (t) => {
  // Every rule at its default severity (all reported); not one is turned off.
  const diagnostics = validate(dockerfile);
  t.same(
    diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`),
    [],
    'no error or warning',
  );
  const cli = await runAllowingFailure(linter, ['lint', dockerfilePath]);
  t.equal(cli.code, 0, `the CLI exits 0 on it${cli.stdout || cli.stderr ? `: ${cli.stdout}${cli.stderr}` : ''}`);

  // A linter that passes everything proves nothing: the same checks must fail this one.
  const dir = t.testdir({
    Dockerfile: [
      'FROM --platfrom=$BUILDPLATFORM node:20-bookworm-slim AS build',
      'COPY package.json',
      'FROM node:20-bookworm-slim',
      'MAINTAINER nobody',
      'ENTRYPOINT ["/usr/bin/tini", "--"]',
      'ENTRYPOINT ["node"]',
      '',
    ].join('\n'),
  });
  const bad = join(dir, 'Dockerfile');
  const badDiagnostics = validate(readFileSync(bad, 'utf8'));
  const messages = badDiagnostics.map((d) => d.message).join('\n');
  t.match(messages, /Unknown flag: platfrom/, 'a misspelled FROM flag');
  t.match(messages, /COPY requires at least two arguments/, 'a COPY without a destination');
  t.match(messages, /MAINTAINER has been deprecated/, 'a deprecated instruction');
  t.match(messages, /only be one ENTRYPOINT/, 'a second ENTRYPOINT');
  const badCli = await runAllowingFailure(linter, ['lint', bad]);
  t.equal(badCli.code, 1, 'the CLI exits 1 on them');
});

t.test('the runtime stage installs exactly native/runtime-packages.txt plus tini', async (t) => {
  t.ok(runtimePackages.length > 0, 'native/runtime-packages.txt lists packages');
  const installed = aptInstalls(finalStage);
  t.same([...installed].sort(), [...runtimePackages, 'tini'].sort());
  t.equal(new Set(installed).size, installed.length, 'each once');
  t.notOk(installed.some((p) => p.includes('$')), 'no package chosen by a variable');
});

t.test('stages: build tools stay in the build stage, which runs on the build platform', async (t) => {
  if (!buildStage) throw new Error('no stage named "build"');
  t.equal(parsed.length, 2, 'a build stage and the runtime stage');
  t.equal(buildStage.platform, '$BUILDPLATFORM', 'the build stage runs natively on the build machine');
  t.match(buildStage.from.args, /\bnode:20-bookworm-slim\b/);
  t.ok(buildStage.instructions.some((i) => i.keyword === 'ARG' && i.args.trim() === 'TARGETARCH'), 'the build stage declares ARG TARGETARCH');
  t.equal(finalStage.platform, undefined, 'the runtime stage is of the target platform');
  t.match(finalStage.from.args, /^node:20-bookworm-slim\s*$/);

  const tools = aptInstalls(finalStage).filter((p) => BUILD_TOOL.test(p));
  t.same(tools, [], 'no compiler, build tool, python or -dev package installed in the runtime stage');
  const runs = finalStage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  t.notMatch(runs, /\b(npm|npx|node-gyp|cmake-js|tsc|make|cmake)\b/, 'nothing built in the runtime stage');

  const entrypoint = finalStage.instructions.find((i) => i.keyword === 'ENTRYPOINT');
  t.same(JSON.parse(entrypoint?.args ?? 'null'), ['/usr/bin/tini', '--', 'node', '/opt/nodenet/dist/lib/cli/nodenet.js']);
  t.same(JSON.parse(finalStage.instructions.find((i) => i.keyword === 'CMD')?.args ?? 'null'), ['--help']);
  // The DaemonSets give only args, so the entry point must end in nodenet's CLI.
  for (const file of ['daemonset-iptables.yaml', 'daemonset-ipvs.yaml']) {
    const yaml = readFileSync(join(repoRoot, 'deploy', file), 'utf8');
    t.notMatch(yaml, /^\s+command:/m, `${file} keeps the image's entry point`);
    t.match(yaml, /^\s+args: \["agent"\]/m, `${file} runs "nodenet agent"`);
  }
  t.ok(existsSync(join(repoRoot, 'lib', 'cli', 'nodenet.ts')), 'the entry point is compiled from lib/cli/nodenet.ts');
});

t.test('every COPY has something to copy', async (t) => {
  if (!buildStage) throw new Error('no stage named "build"');
  const ignored = dockerignore();
  const isIgnored = (rel: string) => ignored.some((re) => re.test(rel));
  const contextDestinations: string[] = [];
  for (const stage of parsed) {
    for (const copy of copies(stage).filter((c) => c.from === undefined)) {
      for (const source of copy.sources) {
        const rel = posix.normalize(source).replace(/\/$/, '');
        t.ok(existsSync(join(repoRoot, rel)), `line ${copy.line}: ${source} exists in the repository`);
        t.notOk(isIgnored(rel), `line ${copy.line}: ${source} is not excluded by .dockerignore`);
        if (stage === buildStage) {
          const dest = posix.resolve(workdirAt(stage, copy.line), copy.dest);
          contextDestinations.push(copy.dest.endsWith('/') ? posix.join(dest, posix.basename(rel)) : dest);
        }
      }
    }
  }
  // What the build stage makes rather than copies, by the top-level entry it makes under its WORKDIR.
  // Each is also in .dockerignore, so the image can only get the build stage's own.
  const runs = buildStage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
  const tsconfig = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
  const producers: Record<string, RegExp> = {
    [tsconfig.compilerOptions.outDir]: /\btsc -p tsconfig\.json\b/,
    prebuilds: /\bscripts\/prebuild\b/,
  };
  t.equal(tsconfig.compilerOptions.rootDir, '.', 'tsc keeps lib/ as dist/lib');
  for (const copy of copies(finalStage).filter((c) => c.from !== undefined)) {
    t.equal(copy.from, 'build', `line ${copy.line}: copies from the build stage`);
    const buildDir = workdirAt(buildStage, Infinity);
    for (const source of copy.sources) {
      const path = posix.normalize(source).replace(/\/$/, '');
      if (path.startsWith(`${buildDir}/`)) {
        const rel = posix.relative(buildDir, path);
        const top = rel.split('/')[0]!;
        if (contextDestinations.some((d) => path === d || path.startsWith(`${d}/`))) {
          t.pass(`line ${copy.line}: ${source} comes from the build context`);
        } else {
          const producer = producers[top];
          t.ok(producer && producer.test(runs), `line ${copy.line}: ${source} is made by a build stage RUN (${producer ?? 'no known producer'})`);
          t.ok(isIgnored(top), `line ${copy.line}: a local ${top}/ is kept out of the context`);
          // The local build runs the same commands, so the same path appears here.
          t.ok(existsSync(join(repoRoot, rel)), `line ${copy.line}: the local build makes ${rel} too`);
        }
      } else {
        t.ok(runs.includes(path), `line ${copy.line}: a build stage RUN makes ${path}`);
      }
    }
  }
  // netem's tables: the build stage copies them out of iproute2, which it installs.
  const tables = /\bcp\s+(\S+\.dist)\s/.exec(runs)?.[1];
  t.ok(tables, 'the build stage copies the .dist tables');
  t.ok(aptInstalls(buildStage).includes('iproute2'), 'from iproute2, which it installs');
  const owners = await run('/bin/sh', ['-c', `dpkg -S ${tables ?? '/nonexistent'}`]);
  t.match(owners, /^iproute2:/m, `${tables} is iproute2's`);
});

t.test("the build stage's shell steps, run for each target against stub commands", async (t) => {
  if (!buildStage) throw new Error('no stage named "build"');
  // Every command the steps run resolves to a stub that records its arguments; with nothing else
  // on PATH, a command not stubbed fails the step instead of touching this machine.
  const dir = t.testdir({ bin: {}, work: { scripts: {} } });
  const log = join(dir, 'calls.log');
  const stub = (path: string, name: string) => {
    writeFileSync(path, `#!/bin/sh\necho "${name} $*" >> "${log}"\n`);
    chmodSync(path, 0o755);
  };
  for (const name of ['apt-get', 'dpkg', 'rm', 'npm', 'npx', 'mkdir', 'mv', 'cp']) stub(join(dir, 'bin', name), name);
  stub(join(dir, 'work', 'scripts', 'prebuild'), 'scripts/prebuild');
  const steps = buildStage.instructions.filter((i) => i.keyword === 'RUN');

  const simulate = async (buildArch: string, targetArch: string) => {
    writeFileSync(log, '');
    for (const step of steps) {
      const result = await runAllowingFailure('/bin/sh', ['-c', step.args], {
        cwd: join(dir, 'work'),
        env: { PATH: join(dir, 'bin'), BUILDARCH: buildArch, TARGETARCH: targetArch },
      });
      if (result.code !== 0) return { ...result, calls: readFileSync(log, 'utf8').trim().split('\n') };
    }
    return { code: 0, stderr: '', stdout: '', calls: readFileSync(log, 'utf8').trim().split('\n') };
  };
  const libraries = ['libnl-3-dev', 'libnl-route-3-dev', 'libip4tc-dev', 'libip6tc-dev', 'libnftnl-dev', 'libmnl-dev'];
  const installed = (calls: string[]) =>
    calls.filter((c) => c.startsWith('apt-get install')).flatMap((c) => c.split(/\s+/).slice(2).filter((w) => !w.startsWith('-')));

  const amd64 = await simulate('amd64', 'amd64');
  t.equal(amd64.code, 0, `amd64 target: every step succeeds ${amd64.stderr}`.trim());
  t.ok(amd64.calls.includes('scripts/prebuild x64'), 'amd64 builds prebuilds/linux-x64');
  t.notOk(amd64.calls.some((c) => c.startsWith('dpkg --add-architecture')), 'amd64 adds no foreign architecture');
  t.same(installed(amd64.calls).filter((p) => p.endsWith('-dev')).sort(), [...libraries].sort(), 'amd64 -dev libraries');
  t.notOk(installed(amd64.calls).some((p) => p.includes('aarch64') || p.endsWith(':arm64')), 'no cross toolchain for amd64');

  const arm64 = await simulate('amd64', 'arm64');
  t.equal(arm64.code, 0, `arm64 target: every step succeeds ${arm64.stderr}`.trim());
  t.ok(arm64.calls.includes('scripts/prebuild arm64'), 'arm64 builds prebuilds/linux-arm64');
  t.ok(arm64.calls.includes('dpkg --add-architecture arm64'), 'arm64 adds the arm64 architecture');
  for (const p of ['g++-aarch64-linux-gnu', 'binutils-aarch64-linux-gnu', ...libraries.map((l) => `${l}:arm64`)]) {
    t.ok(installed(arm64.calls).includes(p), `arm64 installs ${p}`);
  }
  t.ok(arm64.calls.some((c) => c.startsWith('npx tsc -p tsconfig.json')), 'the TypeScript is compiled');
  t.ok(arm64.calls.some((c) => /^npm ci .*--omit=dev/.test(c)), 'production dependencies installed apart');

  const s390x = await simulate('amd64', 's390x');
  t.not(s390x.code, 0, 'an unsupported target fails');
  t.match(s390x.stderr, /unsupported target architecture 's390x'/, 'with a message naming it');
  t.notOk(s390x.calls.some((c) => c.startsWith('apt-get')), 'before any apt-get');
  const armHost = await simulate('arm64', 'arm64');
  t.not(armHost.code, 0, 'a build machine scripts/prebuild cannot cross-compile from fails');
  t.match(armHost.stderr, /amd64 build machine/, 'with a message saying what it needs');
});

t.test('the runtime packages are exactly those holding the libraries the x64 prebuild needs', async (t) => {
  requireArtifact(x64Prebuild);
  const dynamic = await run('readelf', ['-d', x64Prebuild]);
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
  t.ok(needed.length > 0, `NEEDED entries: ${needed.join(', ')}`);
  const owners = new Map<string, string>();
  for (const soname of needed) {
    let owner: string | undefined;
    for (const dir of ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu']) {
      const result = await runAllowingFailure('dpkg', ['-S', `${dir}/${soname}`]);
      if (result.code === 0) {
        owner = result.stdout.split(':')[0]!.trim();
        break;
      }
    }
    t.ok(owner, `${soname} belongs to a Debian package`);
    if (owner) owners.set(soname, owner);
  }
  const required = [...new Set(owners.values())].filter((p) => !BASE_PACKAGES.has(p)).sort();
  t.same(required, [...runtimePackages].sort(), `runtime-packages.txt = packages of ${[...owners].map(([s, p]) => `${s} (${p})`).join(', ')}`);
});
