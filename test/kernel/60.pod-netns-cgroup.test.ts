// The /proc fallback of the pod → netns resolver on a real kernel: a cgroup named like a kubelet
// pod's, a process put in it inside a test network namespace, and findPodNetns finds that
// namespace (the inode `stat -L` gives for the `ip netns` file) and the runtime-dir mapping names
// the file. A killed process, and a dead one whose pid still shows in the pod's cgroup, are not
// used. A hostNetwork-like pod is reported as such.
//
// Everything lives under <cgroup mount>/nodenet-test-<pid>: its processes are killed and its
// cgroups removed in teardown, pass or fail, and the parent test then checks that nothing is left.
// A run that was killed leaves a directory whose pid is gone; the next run removes it first.
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import t from 'tap';

import { findNetnsFile, findPodNetns, parseStat } from '../../lib/controller/shaping/pod-netns.js';
import { alive, exited, joinCgroup, podSandboxCgroup, startSleeper, testCgroupRoot, until } from '../helpers/cgroup.js';
import { run } from '../helpers/exec.js';
import { liveTestNamespaces, makeNetns } from '../helpers/netns.js';

async function netnsIno(path: string): Promise<number> {
  return (await stat(path)).ino;
}

async function ppidChildren(ppid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const text = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) === ppid) out.push(Number(name));
  }
  return out;
}

t.test('a pod cgroup on this kernel leads to its network namespace', async (t) => {
  let base = '';
  const namespacesBefore = liveTestNamespaces();
  const started: Started[] = [];

  await t.test('scenario', async (t) => {
    const root = await testCgroupRoot(t);
    base = root.base;
    t.comment(`cgroup v${root.mount.version} at ${root.mount.path}`);

    const ns = await makeNetns(t);
    const uid = randomUUID();
    const sandboxId = randomBytes(32).toString('hex');
    const sandboxScope = podSandboxCgroup(base, uid, sandboxId);
    await mkdir(sandboxScope, { recursive: true });

    const sandbox = startSleeper(t, ns);
    const pid = sandbox.pid!;
    started.push(await startTimeOf(pid));
    await joinCgroup(sandboxScope, pid);
    const want = await netnsIno(ns.path);
    await until('the sleeper to be in the test namespace', async () => (await netnsIno(`/proc/${pid}/ns/net`).catch(() => 0)) === want);

    const found = await findPodNetns(uid);
    t.match(found, { kind: 'found', pid, via: 'oldest', containerId: sandboxId, path: `/proc/${pid}/ns/net`, processes: 1, namespaces: 1 });
    const witness = Number((await run('stat', ['-L', '-c', '%i', ns.path])).trim());
    t.equal(found.kind === 'found' && found.netnsInode, witness, `inode equals stat -L ${ns.path}`);
    const file = await stat(ns.path);
    t.equal(found.kind === 'found' && found.netnsDev, file.dev, 'and the nsfs device too');
    t.equal(await findNetnsFile({ dev: file.dev, ino: witness }), ns.path, 'the /var/run/netns mapping names the test namespace');
    t.match(await findPodNetns(uid.replaceAll('-', '_')), { kind: 'found', pid }, 'underscored UID');

    // A hostNetwork-like pod, in the cgroupfs driver's shape: its process shares our namespace.
    const hostUid = randomUUID();
    const hostCtr = join(base, 'kubepods', 'besteffort', `pod${hostUid}`, randomBytes(32).toString('hex'));
    await mkdir(hostCtr, { recursive: true });
    const hostProc = startSleeper(t, null);
    started.push(await startTimeOf(hostProc.pid!));
    await joinCgroup(hostCtr, hostProc.pid!);
    t.match(await findPodNetns(hostUid), { kind: 'host-network', pid: hostProc.pid });

    // Killed and reaped: the pod has no process left, nothing is reported.
    sandbox.kill('SIGKILL');
    await exited(sandbox);
    t.notOk(alive(pid), 'the sandbox process is gone');
    t.match(await findPodNetns(uid), { kind: 'not-found', matched: 0 }, 'a killed process is not used');

    // Dead but not reaped: a zombie keeps its pid and its line in the pod's cgroup, and has no
    // namespace any more. The shell forks a child into the pod, then becomes a sleep that never
    // reaps it and is moved out of the pod, leaving only the zombie there.
    const holderCgroup = join(base, 'holder');
    await mkdir(holderCgroup);
    const parent = startSleeper(t, ns, 'read go; sleep 0 & exec sleep 600');
    started.push(await startTimeOf(parent.pid!));
    await joinCgroup(sandboxScope, parent.pid!);
    await until('the shell to be in the test namespace', async () => (await netnsIno(`/proc/${parent.pid}/ns/net`).catch(() => 0)) === want);
    parent.stdin!.end('go\n');
    let zombie = 0;
    await until('a zombie child in the pod', async () => {
      for (const child of await ppidChildren(parent.pid!)) {
        const st = parseStat(await readFile(`/proc/${child}/stat`, 'utf8').catch(() => ''));
        if (st?.state === 'Z') zombie = child;
      }
      return zombie !== 0;
    });
    await joinCgroup(holderCgroup, parent.pid!);
    const zombieCgroup = await readFile(`/proc/${zombie}/cgroup`, 'utf8');
    t.match(zombieCgroup, `pod${uid.replaceAll('-', '_')}.slice`, 'the zombie still shows in the pod cgroup');
    t.match(await findPodNetns(uid), { kind: 'not-found', matched: 1, raced: 1 }, 'a dead process is not used');
  });

  // The scenario's teardown has run: nothing it made may be left.
  t.notOk(existsSync(base), `${base} removed`);
  const running = (await Promise.all(started.map(async (p) => ((await stillRunning(p)) ? [p.pid] : [])))).flat();
  t.same(running, [], 'every process started is gone');
  t.same(liveTestNamespaces(), namespacesBefore, 'the test namespace removed');
});

interface Started {
  pid: number;
  startTime: number;
}

// The same pid with the same start time is the same process; a zombie waiting for init no longer runs.
async function stillRunning(p: Started): Promise<boolean> {
  const st = parseStat(await readFile(`/proc/${p.pid}/stat`, 'utf8').catch(() => ''));
  return st !== null && st.state !== 'Z' && st.startTime === p.startTime;
}

async function startTimeOf(pid: number): Promise<Started> {
  const st = parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  if (st === null) throw new Error(`cannot read /proc/${pid}/stat`);
  return { pid, startTime: st.startTime };
}
