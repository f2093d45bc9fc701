// The npm package on arm64: an arm64 Node (under qemu-aarch64-static) imports `nodenet/kernel`
// from the packed tarball, node-gyp-build picks prebuilds/linux-arm64, and the typed API makes a
// bridge with a VXLAN port in a test namespace, seen by the host's ip. Only link calls are tried:
// qemu's user mode translates rtnetlink's link messages but answers qdisc messages with EOPNOTSUPP
// and passes neither iptables' socket options nor nfnetlink, so those paths are proven by the x64
// stages and, for arm64, by the same sources compiling and linking.
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { arm64NodePath, requireArtifact } from '../helpers/artifacts.js';
import { repoRoot } from '../helpers/dist.js';
import { run, runAllowingFailure } from '../helpers/exec.js';
import { makeNetns } from '../helpers/netns.js';

t.test('an arm64 Node uses the packed arm64 prebuild through nodenet/kernel', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'nodenet-arm64-package-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { env: { ...process.env, npm_config_loglevel: 'error' } });
  const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack made no tarball');
  await run('tar', ['xzf', join(work, tarball), '-C', work]);
  // The package's dependencies are plain JavaScript: the checkout's serve for any architecture.
  symlinkSync(join(repoRoot, 'node_modules'), join(work, 'package', 'node_modules'));

  const ns = await makeNetns(t);
  const script = `
    const k = await import(${JSON.stringify(join(work, 'package', 'dist', 'lib', 'kernel', 'index.js'))});
    const netns = ${JSON.stringify(ns.path)};
    const bridge = await k.links.create({ netns, name: 'arm-br0', spec: { kind: 'bridge' }, mtu: 1400 });
    await k.links.create({ netns, name: 'arm-vx0', spec: { kind: 'vxlan', vni: 4242, port: 4789, learning: false }, master: 'arm-br0' });
    const vxlan = await k.links.get('arm-vx0', { netns });
    console.log(JSON.stringify({
      arch: process.arch, path: k.runtime.versions().path,
      bridge: { name: bridge.name, kind: bridge.kind, mtu: bridge.mtu },
      vxlan: { master: vxlan.master, vni: vxlan.vxlan.vni, port: vxlan.vxlan.port, learning: vxlan.vxlan.learning },
    }));`;
  const result = await runAllowingFailure('qemu-aarch64-static', [requireArtifact(arm64NodePath()), '--input-type=module', '-e', script]);
  t.equal(result.code, 0, result.stderr);
  t.same(JSON.parse(result.stdout), {
    arch: 'arm64',
    path: join(work, 'package', 'prebuilds', 'linux-arm64', 'nodenet.napi.glibc.node'),
    bridge: { name: 'arm-br0', kind: 'bridge', mtu: 1400 },
    vxlan: { master: 'arm-br0', vni: 4242, port: 4789, learning: false },
  });
  const [witness] = JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show', 'arm-br0'])) as Array<{ linkinfo: { info_kind: string } }>;
  t.equal(witness?.linkinfo.info_kind, 'bridge');
  const [port] = JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show', 'arm-vx0'])) as Array<{ master: string; linkinfo: { info_kind: string; info_data: { id: number; port: number; learning: boolean } } }>;
  t.match(port, { master: 'arm-br0', linkinfo: { info_kind: 'vxlan', info_data: { id: 4242, port: 4789, learning: false } } });
});
