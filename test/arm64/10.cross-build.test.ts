// The addon cross-compiles for linux-arm64 against Debian's arm64 libraries, and an arm64 Node
// (under qemu-aarch64-static) loads it and makes netlink calls, also inside a namespace.
import t from 'tap';

import { addonBuilds, arm64NodePath, requireArtifact } from '../helpers/artifacts.js';
import { run, runAllowingFailure } from '../helpers/exec.js';
import { makeNetns } from '../helpers/netns.js';

t.test('file says aarch64 and the kernel libraries are linked', async (t) => {
  const path = requireArtifact(addonBuilds.arm64);
  t.match(await run('file', ['-L', path]), /ELF 64-bit LSB shared object, ARM aarch64/);
  const dynamic = await run('aarch64-linux-gnu-readelf', ['-d', path]);
  for (const lib of ['libip4tc.so.2', 'libip6tc.so.2', 'libnl-route-3.so.200', 'libnl-3.so.200', 'libnftnl.so.11', 'libmnl.so.0']) {
    t.match(dynamic, new RegExp(`\\[${lib.replace(/\./g, '\\.')}\\]`), `NEEDED ${lib}`);
  }
});

t.test('an arm64 Node loads it under emulation and lists links', async (t) => {
  const ns = await makeNetns(t);
  await ns.exec('ip', ['link', 'add', 'arm-br', 'type', 'bridge']);
  const node = requireArtifact(arm64NodePath());
  const script = `
    const a = require(${JSON.stringify(requireArtifact(addonBuilds.arm64))});
    Promise.all([a.listLinks(), a.listLinks(${JSON.stringify(ns.path)})]).then(([own, other]) =>
      console.log(JSON.stringify({ arch: process.arch, addon: a.versions().addon, own: own.length, other: other.map((l) => l.name) })));`;
  const result = await runAllowingFailure('qemu-aarch64-static', [node, '-e', script]);
  t.equal(result.code, 0, result.stderr);
  t.match(JSON.parse(result.stdout), { arch: 'arm64', addon: /^\d+\.\d+\.\d+/, own: Number, other: ['lo', 'arm-br'] });
});
