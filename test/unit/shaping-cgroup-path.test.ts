// The fallback pod → network namespace resolver: which pod a /proc/<pid>/cgroup names, for every
// shape kubelets and runtimes produce, and the /proc scan over a fake procfs tree — including the
// races a real /proc has (pid reuse between open and re-check, processes vanishing, denied reads).
//
// The fake tree: every namespace is a plain file under ns/, and /proc/<pid>/ns/net plus the
// runtime's netns-dir entries are hard links to it, so fstat of an open ns/net and stat of a
// netns file give the same device and inode, as nsfs does for real ones.
import { link, mkdir, mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import t from 'tap';

import { normalisePodUid, parsePodCgroup, parsePodCgroupPath, type PodCgroup } from '../../lib/controller/shaping/cgroup-path.js';
import { findNetnsFile, findPodNetns, nodeFs, parseStat, type ResolverFs } from '../../lib/controller/shaping/pod-netns.js';

const UID = '5c0e7d52-91a3-4b6f-8e21-d4f0a9c3b716';
const UID_ = UID.replaceAll('-', '_');
const OTHER = '0b9d5f3e-2c71-4e8a-a6d4-7f13e5c2b980';
const OTHER_ = OTHER.replaceAll('-', '_');
// A static pod: the kubelet's hash of its manifest, no dashes under either driver.
const HASH = '9f2c4e81b07a3d65c1e8f4a2b9d06e73';
const CID = 'c3a94f0e1b7d2865f4e0a9b3c7d1e5f2a8b6c4d0e9f1a3b5c7d9e1f3a5b7c9d1';
const CID2 = '1e2d3c4b5a69788796a5b4c3d2e1f0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b';
const NODE = 'ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12';

const V1_CONTROLLERS = ['pids', 'cpu,cpuacct', 'memory', 'blkio', 'devices', 'freezer', 'net_cls,net_prio', 'perf_event', 'hugetlb', 'cpuset', 'rdma', 'misc'];

/** A whole cgroup v1 file: every controller and systemd's named hierarchy at `path`. */
function v1(path: string, systemdPath = path): string {
  const lines = V1_CONTROLLERS.map((c, i) => `${V1_CONTROLLERS.length + 1 - i}:${c}:${path}`);
  return [...lines, `1:name=systemd:${systemdPath}`, ''].join('\n');
}

/** A hybrid host: v1 controllers, systemd's named hierarchy and the unified line. */
function hybrid(controllers: string, unified: string): string {
  return `${v1(controllers, unified)}0::${unified}\n`;
}

const v2 = (path: string): string => `0::${path}\n`;

interface Shape {
  name: string;
  content: string;
  want: Partial<PodCgroup> | null;
}

const SD_BURSTABLE = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`;
const SD_BESTEFFORT = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`;
const SD_GUARANTEED = `/kubepods.slice/kubepods-pod${UID_}.slice`;

const found = (over: Partial<PodCgroup>): Partial<PodCgroup> => ({
  podUid: UID,
  conmon: false,
  relative: false,
  deleted: false,
  ...over,
});

const SHAPES: Shape[] = [
  // systemd driver, cgroup v2
  {
    name: 'v2 systemd burstable containerd',
    content: v2(`${SD_BURSTABLE}/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'burstable', containerId: CID, runtime: 'containerd' }),
  },
  {
    name: 'v2 systemd besteffort cri-o',
    content: v2(`${SD_BESTEFFORT}/crio-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'besteffort', containerId: CID, runtime: 'cri-o' }),
  },
  {
    name: 'v2 systemd guaranteed (no QoS slice) docker',
    content: v2(`${SD_GUARANTEED}/docker-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'guaranteed', containerId: CID, runtime: 'docker' }),
  },
  {
    name: 'v2 systemd cri-o conmon',
    content: v2(`${SD_BURSTABLE}/crio-conmon-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'burstable', containerId: CID, runtime: 'cri-o', conmon: true }),
  },
  {
    name: "v2 systemd cri-o with crun's container subgroup",
    content: v2(`${SD_BURSTABLE}/crio-${CID}.scope/container`),
    want: found({ driver: 'systemd', containerId: CID, runtime: 'cri-o' }),
  },
  {
    name: 'v2 systemd, process directly in the pod slice',
    content: v2(SD_BESTEFFORT),
    want: found({ driver: 'systemd', qos: 'besteffort', containerId: null, runtime: null }),
  },
  {
    name: 'v2 systemd, child scope no runtime names',
    content: v2(`${SD_BESTEFFORT}/mystery-${CID}.scope`),
    want: found({ driver: 'systemd', containerId: null, runtime: null }),
  },
  // cgroupfs driver
  {
    name: 'v2 cgroupfs burstable containerd/docker (bare id)',
    content: v2(`/kubepods/burstable/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'burstable', containerId: CID, runtime: null }),
  },
  {
    name: 'v2 cgroupfs guaranteed',
    content: v2(`/kubepods/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'guaranteed', containerId: CID }),
  },
  {
    name: 'v2 cgroupfs besteffort cri-o',
    content: v2(`/kubepods/besteffort/pod${UID}/crio-${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'besteffort', containerId: CID, runtime: 'cri-o' }),
  },
  {
    name: 'v2 cgroupfs cri-o conmon',
    content: v2(`/kubepods/besteffort/pod${UID}/crio-conmon-${CID}`),
    want: found({ driver: 'cgroupfs', containerId: CID, runtime: 'cri-o', conmon: true }),
  },
  {
    name: "cgroupfs, a container's own nested cgroups (docker in the pod)",
    content: v2(`/kubepods/burstable/pod${UID}/${CID}/docker/${CID2}`),
    want: found({ driver: 'cgroupfs', qos: 'burstable', containerId: CID }),
  },
  {
    name: 'cgroupfs, process directly in the pod cgroup',
    content: v2(`/kubepods/burstable/pod${UID}`),
    want: found({ driver: 'cgroupfs', qos: 'burstable', containerId: null }),
  },
  // cgroup v1 and hybrid
  {
    name: 'v1 cgroupfs, every hierarchy',
    content: v1(`/kubepods/burstable/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'burstable', containerId: CID }),
  },
  {
    name: 'v1 systemd, every hierarchy',
    content: v1(`${SD_GUARANTEED}/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'guaranteed', containerId: CID, runtime: 'containerd' }),
  },
  {
    name: 'v1 with only some controllers in the pod (net_cls at the root)',
    content: `3:net_cls,net_prio:/\n2:memory:/kubepods/besteffort/pod${UID}/${CID}\n1:name=systemd:/system.slice/containerd.service\n`,
    want: found({ driver: 'cgroupfs', qos: 'besteffort', containerId: CID }),
  },
  {
    name: 'hybrid, cgroupfs driver: unified and systemd lines show the service, controllers the pod',
    content: hybrid(`/kubepods/besteffort/pod${UID}/${CID}`, '/system.slice/containerd.service'),
    want: found({ driver: 'cgroupfs', qos: 'besteffort', containerId: CID }),
  },
  {
    name: 'hybrid, systemd driver',
    content: hybrid(`${SD_BURSTABLE}/cri-containerd-${CID}.scope`, `${SD_BURSTABLE}/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'burstable', containerId: CID }),
  },
  {
    name: 'lines that disagree: the unified line wins',
    content: `4:memory:/kubepods/besteffort/pod${OTHER}/${CID2}\n0::${SD_BURSTABLE}/cri-containerd-${CID}.scope\n`,
    want: found({ driver: 'systemd', containerId: CID }),
  },
  // --cgroup-root and nesting
  {
    name: 'cgroupfs under a custom --cgroup-root',
    content: v2(`/custom/root/kubepods/burstable/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'burstable', containerId: CID }),
  },
  {
    name: 'systemd with --cgroup-root=/system.slice',
    content: v2(`/system.slice/system-kubepods.slice/system-kubepods-burstable.slice/system-kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'burstable', containerId: CID }),
  },
  {
    name: 'kind node, seen from inside the node (--cgroup-root=/kubelet, systemd)',
    content: v2(`/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'besteffort', containerId: CID, runtime: 'containerd' }),
  },
  {
    name: 'kind node, seen from the host',
    content: v2(`/system.slice/docker-${NODE}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod${UID_}.slice/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'guaranteed', containerId: CID }),
  },
  {
    name: 'kind on cgroup v1 (cgroupfs under the node container)',
    content: v1(`/docker/${NODE}/kubepods/besteffort/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'besteffort', containerId: CID }),
  },
  {
    name: 'minikube with cri-o (systemd under the node container)',
    content: v1(`/docker/${NODE}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'besteffort', containerId: CID, runtime: 'cri-o' }),
  },
  {
    name: 'a cgroup name holding ":" above the pod',
    content: v2(`/odd:name/kubepods/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', containerId: CID }),
  },
  // static pods
  {
    name: 'static pod, systemd',
    content: v2(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${HASH}.slice/cri-containerd-${CID}.scope`),
    want: found({ podUid: HASH, driver: 'systemd', qos: 'burstable', containerId: CID }),
  },
  {
    name: 'static pod, cgroupfs',
    content: v2(`/kubepods/burstable/pod${HASH}/${CID}`),
    want: found({ podUid: HASH, driver: 'cgroupfs', qos: 'burstable', containerId: CID }),
  },
  // cgroup namespaces: the reader sits in a container with its own cgroup namespace
  {
    name: 'cgroupns-relative, another pod (systemd): QoS still in the slice name',
    content: v2(`/../../kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${CID}.scope`),
    want: found({ driver: 'systemd', qos: 'besteffort', containerId: CID, relative: true }),
  },
  {
    name: 'cgroupns-relative, another pod of another QoS (cgroupfs)',
    content: v2(`/../../../burstable/pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: 'burstable', containerId: CID, relative: true }),
  },
  {
    name: 'cgroupns-relative, another pod of the same QoS (cgroupfs): QoS hidden',
    content: v2(`/../../pod${UID}/${CID}`),
    want: found({ driver: 'cgroupfs', qos: null, containerId: CID, relative: true }),
  },
  { name: 'cgroupns: the reader\'s own container (root of its namespace)', content: v2('/'), want: null },
  { name: 'cgroupns: below the reader\'s root', content: v2('/init.scope'), want: null },
  { name: 'cgroupns: a sibling container of the reader\'s own pod', content: v2(`/../cri-containerd-${CID}.scope`), want: null },
  { name: 'cgroupns v1: every hierarchy at its namespace root', content: v1('/'), want: null },
  // a dying process
  {
    name: 'removed cgroup under a zombie',
    content: v2(`/kubepods/burstable/pod${UID}/${CID} (deleted)`),
    want: found({ driver: 'cgroupfs', containerId: CID, deleted: true }),
  },
  // not a pod
  { name: 'empty', content: '', want: null },
  { name: 'not a cgroup file', content: 'hello world\n\u0000\u0001binary', want: null },
  { name: 'a login session', content: v2('/user.slice/user-1000.slice/session-3.scope'), want: null },
  { name: 'a plain docker container', content: v2(`/system.slice/docker-${CID}.scope`), want: null },
  { name: 'a plain docker container on cgroup v1', content: v1(`/docker/${CID}`), want: null },
  { name: 'containerd outside kubernetes', content: v2(`/k8s.io/${CID}`), want: null },
  { name: 'kubepods without a pod', content: v2('/kubepods.slice/kubepods-burstable.slice'), want: null },
  { name: 'pod directory not under kubepods', content: v2(`/elsewhere/pod${UID}/${CID}`), want: null },
  { name: 'pod directory under a QoS name not under kubepods', content: v2(`/elsewhere/burstable/pod${UID}/${CID}`), want: null },
  { name: 'malformed UID', content: v2(`/kubepods/burstable/pod${UID.slice(0, -1)}/${CID}`), want: null },
  { name: 'non-hex UID', content: v2(`/kubepods/burstable/pod${UID.replace('5c', 'zz')}/${CID}`), want: null },
  { name: 'systemd slice with dashes in the UID (never written)', content: v2(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID}.slice`), want: null },
  { name: 'cgroupfs directory with underscores (never written)', content: v2(`/kubepods/burstable/pod${UID_}/${CID}`), want: null },
  { name: "runc's cgroupsPath notation, not a path", content: v2(`kubepods-besteffort-pod${UID_}.slice:cri-containerd:${CID}`), want: null },
  { name: 'a line without fields', content: `/kubepods/pod${UID}/${CID}\n`, want: null },
];

t.test('every cgroup path shape', async (t) => {
  for (const shape of SHAPES) {
    const got = parsePodCgroup(shape.content);
    if (shape.want === null) t.equal(got, null, shape.name);
    else t.match(got, shape.want, shape.name);
  }
});

t.test('ids are normalised: lowercase, dashed UUIDs', async (t) => {
  const got = parsePodCgroupPath(`/kubepods.slice/kubepods-pod${UID_.toUpperCase()}.slice/cri-containerd-${CID.toUpperCase()}.scope`);
  t.equal(got?.podUid, UID);
  t.equal(got?.containerId, CID);
  t.equal(parsePodCgroupPath(`/kubepods/pod${UID}`)?.path, `/kubepods/pod${UID}`, 'the path it read is reported');
});

t.test('normalisePodUid', async (t) => {
  t.equal(normalisePodUid(UID), UID);
  t.equal(normalisePodUid(UID_), UID, 'systemd spelling');
  t.equal(normalisePodUid(UID.toUpperCase()), UID);
  t.equal(normalisePodUid(` ${UID}\n`), UID);
  t.equal(normalisePodUid(HASH), HASH, 'a static pod hash stays as the kubelet spells it');
  for (const bad of ['', 'pod', UID.slice(1), `${UID}0`, UID.replace('-', '_'), 'g'.repeat(32), `${HASH}0`]) {
    t.equal(normalisePodUid(bad), null, `rejects ${JSON.stringify(bad)}`);
  }
});

t.test('parseStat', async (t) => {
  const odd = parseStat(statLine(42, 'a) (b c)', 'S', 777));
  t.same(odd, { comm: 'a) (b c)', state: 'S', startTime: 777 }, 'comm with spaces and parentheses');
  t.equal(parseStat('garbage'), null);
  t.equal(parseStat('1 (x) S 1'), null, 'truncated');
  const self = parseStat(await readFile(`/proc/${process.pid}/stat`, 'utf8'));
  t.ok(self && self.startTime > 0, 'reads the real /proc/<pid>/stat');
});

// ---------------------------------------------------------------------------------------------
// findPodNetns against a fake procfs

function statLine(pid: number, comm: string, state: string, startTime: number): string {
  const rest = Array.from({ length: 50 }, () => '0');
  rest[0] = state;
  rest[1] = '1';
  rest[19] = String(startTime);
  return `${pid} (${comm}) ${rest.join(' ')}\n`;
}

interface FakeProcess {
  pid: number;
  cgroup: string;
  netns: string;
  comm?: string;
  startTime?: number;
  state?: string;
}

interface FakeHost {
  root: string;
  proc: string;
  netnsDir: string;
  ns(name: string): Promise<{ dev: number; ino: number }>;
  add(p: FakeProcess): Promise<void>;
}

async function fakeHost(t: { teardown(fn: () => unknown): void }, options: { pid1?: boolean; self?: boolean } = {}): Promise<FakeHost> {
  const root = await mkdtemp(join(tmpdir(), 'nodenet-procfs-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const proc = join(root, 'proc');
  const nsDir = join(root, 'ns');
  const netnsDir = join(root, 'netns');
  await Promise.all([mkdir(proc), mkdir(nsDir), mkdir(netnsDir)]);
  const nsFile = async (name: string): Promise<string> => {
    const path = join(nsDir, name);
    await writeFile(path, '', { flag: 'a' });
    return path;
  };
  const host: FakeHost = {
    root,
    proc,
    netnsDir,
    ns: async (name) => stat(await nsFile(name)),
    add: async (p) => {
      const dir = join(proc, String(p.pid));
      await mkdir(join(dir, 'ns'), { recursive: true });
      await writeFile(join(dir, 'cgroup'), p.cgroup);
      await writeFile(join(dir, 'stat'), statLine(p.pid, p.comm ?? 'app', p.state ?? 'S', p.startTime ?? 1000 + p.pid));
      await link(await nsFile(p.netns), join(dir, 'ns', 'net'));
    },
  };
  if (options.pid1 !== false) await host.add({ pid: 1, cgroup: v2('/init.scope'), netns: 'host', comm: 'systemd', startTime: 1 });
  if (options.self) {
    await mkdir(join(proc, 'self', 'ns'), { recursive: true });
    await link(await nsFile('host'), join(proc, 'self', 'ns', 'net'));
  }
  return host;
}

const inPod = (uid_: string, cid: string): string => v2(`/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${uid_}.slice/cri-containerd-${cid}.scope`);
const conmonOf = (uid: string, cid: string): string => v2(`/kubepods/besteffort/pod${uid}/crio-conmon-${cid}`);

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: staged`), { code });
}

t.test('findPodNetns: the pause process decides, and the netns file is found by inode', async (t) => {
  const h = await fakeHost(t);
  await h.add({ pid: 400, cgroup: inPod(UID_, CID2), netns: 'podA', comm: 'nginx', startTime: 50 }); // older than pause: pause still wins
  await h.add({ pid: 300, cgroup: inPod(UID_, CID), netns: 'podA', comm: 'pause', startTime: 60 });
  await h.add({ pid: 500, cgroup: inPod(OTHER_, CID), netns: 'podB', comm: 'pause' });
  await h.add({ pid: 600, cgroup: v2('/system.slice/sshd.service'), netns: 'host' });
  await link(join(h.root, 'ns', 'podB'), join(h.netnsDir, 'cni-11111111-2222-3333-4444-555555555555'));
  await link(join(h.root, 'ns', 'podA'), join(h.netnsDir, 'cni-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'));
  await writeFile(join(h.netnsDir, 'cni-stale-unmounted'), '');

  const got = await findPodNetns(UID, { procRoot: h.proc });
  const podA = await h.ns('podA');
  t.match(got, { kind: 'found', pid: 300, via: 'pause', containerId: CID, netnsInode: podA.ino, netnsDev: podA.dev, processes: 2, namespaces: 1, raced: 0, denied: 0, failed: 0 });
  t.equal(got.kind === 'found' && got.path, join(h.proc, '300', 'ns', 'net'));
  t.notOk('handle' in got, 'nothing left open unless asked');

  t.equal(await findNetnsFile(podA, { dirs: [h.netnsDir] }), join(h.netnsDir, 'cni-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee'));
  t.equal(await findNetnsFile(await h.ns('podB'), { dirs: [join(h.root, 'missing'), h.netnsDir] }), join(h.netnsDir, 'cni-11111111-2222-3333-4444-555555555555'), 'a missing directory is passed over');
  t.equal(await findNetnsFile(await h.ns('nowhere'), { dirs: [h.netnsDir] }), null);

  const other = await findPodNetns(OTHER_, { procRoot: h.proc });
  t.match(other, { kind: 'found', pid: 500 }, 'the underscored spelling of a UID is accepted');
});

t.test('findNetnsFile compares the device too', async (t) => {
  const h = await fakeHost(t);
  const real = await h.ns('podA');
  await writeFile(join(h.netnsDir, 'same-inode-other-fs'), '');
  const fs: ResolverFs = { ...nodeFs, stat: async () => ({ dev: real.dev + 1, ino: real.ino }) };
  t.equal(await findNetnsFile(real, { dirs: [h.netnsDir], fs }), null);
});

t.test('findPodNetns: without a pause process, the oldest process decides', async (t) => {
  const h = await fakeHost(t);
  // CRI-O without infra containers: the pod's netns is pinned, no pause process. One container
  // process made a namespace of its own later.
  await h.add({ pid: 710, cgroup: inPod(UID_, CID2), netns: 'private', startTime: 900 });
  await h.add({ pid: 720, cgroup: inPod(UID_, CID), netns: 'podA', startTime: 100 });
  // conmon is in the pod's cgroup but the host's namespaces, and older than everything.
  await h.add({ pid: 705, cgroup: conmonOf(UID, CID), netns: 'host', comm: 'conmon', startTime: 10 });
  const got = await findPodNetns(UID, { procRoot: h.proc });
  t.match(got, { kind: 'found', pid: 720, via: 'oldest', containerId: CID, netnsInode: (await h.ns('podA')).ino, processes: 2, namespaces: 2 });
});

t.test('findPodNetns: a hostNetwork pod is reported as such', async (t) => {
  const h = await fakeHost(t);
  await h.add({ pid: 800, cgroup: inPod(UID_, CID), netns: 'host', comm: 'pause', startTime: 5 });
  await h.add({ pid: 810, cgroup: inPod(UID_, CID2), netns: 'scratch', startTime: 6 }); // a tool in the pod made a namespace
  t.match(await findPodNetns(UID, { procRoot: h.proc }), { kind: 'host-network', pid: 800, via: 'pause', netnsInode: (await h.ns('host')).ino });

  const noPause = await fakeHost(t);
  await noPause.add({ pid: 900, cgroup: inPod(UID_, CID), netns: 'host', startTime: 5 });
  await noPause.add({ pid: 910, cgroup: inPod(UID_, CID2), netns: 'scratch', startTime: 6 });
  t.match(await findPodNetns(UID, { procRoot: noPause.proc }), { kind: 'host-network', pid: 900, via: 'oldest' });
});

t.test('findPodNetns: the host reference', async (t) => {
  // Where pid 1's namespace cannot be read (a user namespace, hidepid), the reader's own stands in.
  const h = await fakeHost(t, { pid1: false, self: true });
  await h.add({ pid: 1000, cgroup: inPod(UID_, CID), netns: 'host', comm: 'pause' });
  t.match(await findPodNetns(UID, { procRoot: h.proc }), { kind: 'host-network' });
  t.match(await findPodNetns(UID, { procRoot: h.proc, hostNetns: { dev: 0, ino: 1 } }), { kind: 'found', pid: 1000 }, 'an explicit host namespace wins');

  const none = await fakeHost(t, { pid1: false });
  await t.rejects(findPodNetns(UID, { procRoot: none.proc }), /cannot tell the host's network namespace/);
});

t.test('findPodNetns: nothing of the pod', async (t) => {
  const h = await fakeHost(t);
  await h.add({ pid: 1100, cgroup: inPod(OTHER_, CID), netns: 'podB' });
  await h.add({ pid: 1101, cgroup: conmonOf(UID, CID), netns: 'host' });
  await h.add({ pid: 1102, cgroup: v2(`/kubepods/besteffort/pod${UID}/${CID} (deleted)`), netns: 'podA' });
  await h.add({ pid: 1103, cgroup: inPod(UID_, CID), netns: 'podA', state: 'Z' });
  await mkdir(join(h.proc, 'sys')); // non-pid entries of /proc are not processes
  await writeFile(join(h.proc, 'uptime'), '1 1\n');
  t.match(await findPodNetns(UID, { procRoot: h.proc }), { kind: 'not-found', scanned: 5, matched: 1, raced: 1 }, 'conmon and a removed cgroup do not match; a zombie is skipped');
  await t.rejects(findPodNetns('not-a-uid', { procRoot: h.proc }), TypeError);
});

t.test('findPodNetns: static pod hash', async (t) => {
  const h = await fakeHost(t);
  await h.add({ pid: 1200, cgroup: v2(`/kubepods/burstable/pod${HASH}/${CID}`), netns: 'podS', comm: 'pause' });
  t.match(await findPodNetns(HASH, { procRoot: h.proc }), { kind: 'found', pid: 1200 });
});

/** Wraps the real fs so a test can change what one path reads on its n-th read (one scan's worth). */
function staged(reads: Record<string, (n: number, real: string) => string | Error>, overrides: Partial<ResolverFs> = {}): ResolverFs {
  const seen = new Map<string, number>();
  return {
    ...nodeFs,
    readFile: async (path) => {
      const n = (seen.get(path) ?? 0) + 1;
      seen.set(path, n);
      const real = await nodeFs.readFile(path);
      const stage = reads[path];
      if (!stage) return real;
      const out = stage(n, real);
      if (out instanceof Error) throw out;
      return out;
    },
    ...overrides,
  };
}

t.test('findPodNetns: a pid reused after its namespace was opened is not used', async (t) => {
  const h = await fakeHost(t);
  await h.add({ pid: 1300, cgroup: inPod(UID_, CID), netns: 'podA', comm: 'pause' });
  const cg = join(h.proc, '1300', 'cgroup');
  const st = join(h.proc, '1300', 'stat');

  // The pid now belongs to another pod's process when read again.
  const otherPod = (): ResolverFs => staged({ [cg]: (n, real) => (n === 1 ? real : inPod(OTHER_, CID2)) });
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs: otherPod() }), { kind: 'not-found', matched: 1, raced: 1 });

  // Or to a new process of a host service.
  const hostProcess = staged({ [cg]: (n, real) => (n === 1 ? real : v2('/system.slice/cron.service')) });
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs: hostProcess }), { kind: 'not-found', raced: 1 });

  // Or to a new process of the same pod: the cgroup matches, the start time tells them apart.
  const samePod = staged({ [st]: (n) => statLine(1300, 'pause', 'S', n === 1 ? 100 : 200) });
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs: samePod }), { kind: 'not-found', raced: 1 });

  // Or the process died in between and is a zombie.
  const zombie = staged({ [st]: (n) => statLine(1300, 'pause', n === 1 ? 'S' : 'Z', 100) });
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs: zombie }), { kind: 'not-found', raced: 1 });

  // With another process of the pod still there, that one is used instead.
  await h.add({ pid: 1310, cgroup: inPod(UID_, CID2), netns: 'podA', comm: 'app' });
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs: otherPod() }), { kind: 'found', pid: 1310, via: 'oldest', raced: 1 });
});

t.test('findPodNetns: processes vanishing or unreadable mid-scan', async (t) => {
  const h = await fakeHost(t);
  for (let pid = 1400; pid < 1406; pid++) await h.add({ pid, cgroup: inPod(UID_, CID), netns: 'podA', comm: pid === 1405 ? 'pause' : 'app' });
  const p = (pid: number, file: string): string => join(h.proc, String(pid), file);
  const fs = staged(
    {
      [p(1400, 'cgroup')]: () => errno('ESRCH'),
      [p(1401, 'cgroup')]: () => errno('ENOENT'),
      [p(1402, 'stat')]: () => errno('EACCES'),
      [p(1403, 'cgroup')]: () => errno('EIO'),
    },
    {
      open: async (path) => {
        if (path === p(1404, 'ns/net')) throw errno('EPERM');
        if (path === p(1405, 'ns/net')) throw errno('ENOENT');
        return nodeFs.open(path);
      },
    },
  );
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs }), { kind: 'not-found', raced: 3, denied: 2, failed: 1, error: /EIO/ });

  const readdirRace: ResolverFs = { ...nodeFs, readdir: async (path) => [...(await nodeFs.readdir(path)), '99999'] };
  t.match(await findPodNetns(UID, { procRoot: h.proc, fs: readdirRace }), { kind: 'found', pid: 1405, raced: 1 }, 'a listed pid that is gone by the read');
});

t.test('findPodNetns: keepOpen hands back the open namespace', async (t) => {
  const h = await fakeHost(t);
  await h.add({ pid: 1500, cgroup: inPod(UID_, CID), netns: 'podA', comm: 'pause' });
  await h.add({ pid: 1501, cgroup: inPod(UID_, CID2), netns: 'podA' });
  const opened: number[] = [];
  const closed: number[] = [];
  const fs: ResolverFs = {
    ...nodeFs,
    open: async (path) => {
      const handle = await nodeFs.open(path);
      opened.push(handle.fd);
      return { fd: handle.fd, stat: () => handle.stat(), close: async () => (closed.push(handle.fd), handle.close()) };
    },
  };
  const got = await findPodNetns(UID, { procRoot: h.proc, fs, keepOpen: true });
  if (got.kind !== 'found' || !got.handle) throw new Error(`expected an open handle, got ${JSON.stringify(got)}`);
  t.same(await got.handle.stat().then((s) => [s.dev, s.ino]), [got.netnsDev, got.netnsInode]);
  t.same([...closed].sort(), opened.filter((fd) => fd !== got.handle!.fd).sort(), 'every other handle was closed');
  await got.handle.close();

  opened.length = 0;
  closed.length = 0;
  await findPodNetns(UID, { procRoot: h.proc, fs });
  t.same([...closed].sort(), [...opened].sort(), 'without keepOpen nothing stays open');
});

t.test('findPodNetns: many processes, bounded concurrency', async (t) => {
  const h = await fakeHost(t);
  const adds: Array<Promise<void>> = [];
  for (let pid = 2000; pid < 2600; pid++) {
    const cgroup = pid % 3 === 0 ? inPod(OTHER_, CID) : v2(`/system.slice/svc-${pid}.service`);
    adds.push(h.add({ pid, cgroup, netns: pid % 3 === 0 ? 'podB' : 'host' }));
  }
  await Promise.all(adds);
  await h.add({ pid: 2600, cgroup: inPod(UID_, CID), netns: 'podA', comm: 'pause' });
  let inFlight = 0;
  let peak = 0;
  const fs: ResolverFs = {
    ...nodeFs,
    readFile: async (path) => {
      peak = Math.max(peak, ++inFlight);
      try {
        return await nodeFs.readFile(path);
      } finally {
        inFlight--;
      }
    },
  };
  const got = await findPodNetns(UID, { procRoot: h.proc, fs, concurrency: 8 });
  t.match(got, { kind: 'found', pid: 2600, processes: 1 });
  t.ok(peak <= 8, `at most 8 reads at once (peak ${peak})`);
  t.ok(peak > 1, 'reads do overlap');
});
