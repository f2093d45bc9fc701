// The embedding proof: the packed tarball installs into a fresh project inside a minimal Debian
// root (debootstrap minbase + native/runtime-packages.txt + Node and npm; no compiler, no -dev
// package, no Python), and the README's own example scripts run and type-check there against the
// shipped prebuild and declarations: a bridge made and a filter table read in a test namespace.
//
// The root is read-only below an overlay mounted in a private mount namespace (`unshare`), so each
// step's mounts vanish with it and the cached root stays as test/package/prepare-root made it.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t, { type Test } from 'tap';

import { repoRoot } from '../helpers/dist.js';
import { run, runAllowingFailure, type RunResult } from '../helpers/exec.js';
import { makeNetns } from '../helpers/netns.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');

/** The code block that follows `<!-- embedding-example: NAME -->` in the README. */
function readmeExample(name: string): string {
  const marker = `<!-- embedding-example: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const m = /^```[a-z]*\n([\s\S]*?)^```$/m.exec(readme.slice(at + marker.length));
  if (!m?.[1]) throw new Error(`no code block after ${marker}`);
  return m[1];
}

const runtimePackages = readFileSync(join(repoRoot, 'native', 'runtime-packages.txt'), 'utf8')
  .split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));

const lower = (await run(join(repoRoot, 'test', 'package', 'prepare-root'), [])).trim();
const work = mkdtempSync(join(tmpdir(), 'nodenet-embed-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const upper = join(work, 'upper');
const merged = join(work, 'merged');
for (const dir of [upper, join(work, 'overlay-work'), merged, join(upper, 'consumer')]) mkdirSync(dir, { recursive: true });
// npm's downloads outlive the test so that later runs fetch nothing.
const npmCache = join(process.env.NODENET_CACHE ?? join(process.env.HOME ?? '/root', '.cache', 'nodenet'), 'embed-npm-cache');
mkdirSync(npmCache, { recursive: true });
mkdirSync(join(upper, 'npm-cache'), { recursive: true });
mkdirSync(join(upper, 'etc', 'ssl', 'certs'), { recursive: true });
copyFileSync('/etc/resolv.conf', join(upper, 'etc', 'resolv.conf'));
// A machine whose registry traffic passes a TLS proxy names its CA bundle here; the root's Node
// must trust the same one to reach the registry.
const extraCa = process.env.NODE_EXTRA_CA_CERTS;
const rootEnv = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/root', 'npm_config_cache=/npm-cache', 'npm_config_update_notifier=false'];
if (extraCa && existsSync(extraCa)) {
  copyFileSync(extraCa, join(upper, 'etc', 'ssl', 'certs', 'nodenet-test-extra-ca.crt'));
  rootEnv.push('NODE_EXTRA_CA_CERTS=/etc/ssl/certs/nodenet-test-extra-ca.crt');
}

/** Runs a shell command as root of the minimal Debian root, with `netns` visible as /run/netns/test. */
function inRoot(command: string, netns?: string): Promise<RunResult> {
  const mounts = [
    `mount -t overlay overlay -o lowerdir="$1",upperdir="$2",workdir="$3" "$4"`,
    'mount -t proc proc "$4/proc"',
    'mount --bind /dev "$4/dev"',
    'mount --bind "$5" "$4/npm-cache"',
    ...(netns ? ['touch "$4/run/netns/test"', `mount --bind ${JSON.stringify(netns)} "$4/run/netns/test"`] : []),
    `exec chroot "$4" /usr/bin/env -i ${rootEnv.map((e) => JSON.stringify(e)).join(' ')} /bin/sh -c "$6"`,
  ].join(' && ');
  return runAllowingFailure('unshare', ['--mount', '--propagation', 'private', 'sh', '-euc', mounts, 'sh',
    lower, upper, join(work, 'overlay-work'), merged, npmCache, command]);
}

function ok(t: Test, result: RunResult, what: string): void {
  t.equal(result.code, 0, `${what}: ${result.stderr.trim().split('\n').slice(-15).join('\n')}`);
}

// Everything the subtests share is made before the first one starts: tap ends the file's root test,
// and runs its teardown, once no subtest is pending.
const tarballDir = join(work, 'pack');
mkdirSync(tarballDir);
// dist/ is test/setup's fresh tsc output; the tarball is what `npm publish` would upload.
await run('npm', ['pack', '--ignore-scripts', '--pack-destination', tarballDir], { env: { ...process.env, npm_config_loglevel: 'error' } });
const tarball = readdirSync(tarballDir).find((f) => f.endsWith('.tgz'));
if (!tarball) throw new Error('npm pack made no tarball');
copyFileSync(join(tarballDir, tarball), join(upper, 'consumer', tarball));
writeFileSync(join(upper, 'consumer', 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2));
writeFileSync(join(upper, 'consumer', 'bridge-and-rules.mjs'), readmeExample('bridge-and-rules.mjs'));
writeFileSync(join(upper, 'consumer', 'inventory.ts'), readmeExample('inventory.ts'));

t.test('the root has Node and the runtime libraries, and no compiler, -dev package or Python', async (t) => {
  const tools = await inRoot('for c in cc gcc g++ c++ clang make cmake python3 python pkg-config ld as; do command -v "$c" || true; done');
  ok(t, tools, 'probe');
  t.equal(tools.stdout.trim(), '', 'no build tool on PATH');
  const packages = await inRoot("dpkg-query -W -f '${Package} ${Status}\\n'");
  ok(t, packages, 'dpkg-query');
  const installed = packages.stdout.split('\n').filter((l) => l.endsWith('install ok installed')).map((l) => l.split(/[ :]/)[0]);
  t.same(installed.filter((p) => p?.endsWith('-dev')), [], 'no -dev package');
  for (const p of runtimePackages) t.ok(installed.includes(p), `${p} installed`);
  t.match((await inRoot('node -p process.version')).stdout.trim(), `v${process.versions.node}`);
});

const typescriptVersion = (JSON.parse(readFileSync(join(repoRoot, 'node_modules', 'typescript', 'package.json'), 'utf8')) as { version: string }).version;

t.test('npm installs the tarball with no compiler: the prebuild is used, nothing is built', async (t) => {
  const install = await inRoot(`cd /consumer && npm install --no-audit --no-fund --loglevel=error ./${tarball} typescript@${typescriptVersion} @types/node@20`);
  ok(t, install, 'npm install');
  const installedPackage = join(upper, 'consumer', 'node_modules', 'nodenet');
  t.notOk(existsSync(join(installedPackage, 'build')), 'no build/ directory: node-gyp never ran');
  t.ok(existsSync(join(installedPackage, 'prebuilds', 'linux-x64', 'nodenet.napi.glibc.node')), 'x64 prebuild shipped');
  t.ok(existsSync(join(installedPackage, 'prebuilds', 'linux-arm64', 'nodenet.napi.glibc.node')), 'arm64 prebuild shipped');
  const resolved = await inRoot(`cd /consumer && node -p "require('node-gyp-build').resolve('/consumer/node_modules/nodenet')"`);
  ok(t, resolved, 'node-gyp-build resolve');
  t.equal(resolved.stdout.trim(), '/consumer/node_modules/nodenet/prebuilds/linux-x64/nodenet.napi.glibc.node');
});

t.test("the README's script makes a bridge and reads the filter table in a namespace", async (t) => {
  const ns = await makeNetns(t);
  // A rule of someone else's that the script must report as iptables-save does.
  await ns.exec('iptables-legacy', ['-w', '-A', 'INPUT', '-s', '192.0.2.7/32', '-p', 'tcp', '--dport', '22', '-j', 'DROP']);
  const first = await inRoot('cd /consumer && node bridge-and-rules.mjs /run/netns/test', ns.path);
  ok(t, first, 'first run');
  t.match(first.stdout, /^created br-example: index \d+, mtu 1500, [0-9a-f]{2}(?::[0-9a-f]{2}){5}$/m);
  t.match(first.stdout, /^\*filter$/m);
  t.match(first.stdout, /^:INPUT ACCEPT \[\d+:\d+\]$/m);
  t.match(first.stdout, /^-A INPUT -s 192\.0\.2\.7\/32 -p tcp -m tcp --dport 22 -j DROP$/m);
  const [bridge] = JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show', 'br-example'])) as Array<{
    ifalias?: string; flags: string[]; linkinfo: { info_kind: string; info_data: { stp_state: number } };
  }>;
  t.equal(bridge?.linkinfo.info_kind, 'bridge', 'ip sees a bridge');
  t.equal(bridge?.linkinfo.info_data.stp_state, 0, 'STP off');
  t.equal(bridge?.ifalias, 'made by bridge-and-rules');
  t.ok(bridge?.flags.includes('UP'), 'up');
  // The saved table equals iptables-legacy-save's, counters aside.
  const tableLines = (text: string): string[] =>
    text.split('\n').filter((l) => /^(?:\*|:|-A )/.test(l) || l === 'COMMIT').map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
  const witness = tableLines(await ns.exec('iptables-legacy-save', ['-t', 'filter']));
  const printed = tableLines(first.stdout);
  t.same(printed, witness);

  const again = await inRoot('cd /consumer && node bridge-and-rules.mjs /run/netns/test', ns.path);
  t.equal(again.code, 1, 'a second run fails: the bridge exists');
  t.match(again.stderr, /br-example/);
  t.match(again.stderr, /\[EEXIST\]/);
});

t.test("the README's TypeScript consumer type-checks against the shipped declarations", async (t) => {
  const tsc = 'node node_modules/typescript/bin/tsc --strict --noEmit --module nodenext --moduleResolution nodenext --target es2022 --types node';
  const good = await inRoot(`cd /consumer && ${tsc} inventory.ts`);
  ok(t, good, `tsc inventory.ts ${good.stdout}`);
  // The same check must be able to fail: the declarations are types, not `any`.
  writeFileSync(join(upper, 'consumer', 'wrong.ts'),
    "import { links } from 'nodenet/kernel';\nawait links.create({ name: 42, spec: { kind: 'bridge' } });\nexport {};\n");
  const bad = await inRoot(`cd /consumer && ${tsc} wrong.ts`);
  t.not(bad.code, 0, 'tsc refuses a number for a name');
  t.match(bad.stdout, /wrong\.ts\(2,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
});
