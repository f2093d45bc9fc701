// Which pod (and which container of it) a process belongs to, read from its /proc/<pid>/cgroup.
//
// This is the fallback half of "pod → network namespace" (issue 6): no runtime client, no exec,
// only the names the kubelet and the runtimes give cgroups. Pure: the caller reads the file.
//
// The names this understands, under any prefix (a `--cgroup-root`, a kind or minikube node's own
// container cgroup, `/system.slice/...`):
//   cgroupfs driver  <root>/kubepods[/burstable|/besteffort]/pod<uid>/<container>
//                    <container> = <64 hex> (containerd, docker), crio-<id>, crio-conmon-<id>
//   systemd driver   <a>.slice/<a>-kubepods.slice[/<a>-kubepods-<qos>.slice]/
//                    <a>-kubepods[-<qos>]-pod<uid with _>.slice/<container>
//                    <container> = cri-containerd-<id>.scope, crio-<id>.scope,
//                    crio-conmon-<id>.scope, docker-<id>.scope
// The systemd driver writes '_' for '-' in the UID because systemd reads '-' in a slice name as
// "child of". A static pod's UID is the kubelet's 32-hex hash of its manifest (the value of the
// mirror Pod's `kubernetes.io/config.mirror` annotation), with no dashes under either driver.
//
// Cgroup namespaces: the kernel prints a path relative to the *reader's* cgroup-namespace root.
// A reader in the host's cgroup namespace sees full paths. A reader inside a container of its own
// (cgroupns=private, the default on cgroup v2) sees `/../../<rest>` for a process outside its
// root: the components below the common ancestor stay visible, so another pod's slice or
// pod<uid> directory (and the container below it) is still recovered, with the QoS often hidden.
// What cannot be recovered: a process inside the reader's own root (`/`, `/sub`), and a sibling
// container of the reader's own pod (`/../<container>`): the pod component is above the
// namespace root, so the path carries no UID. Those give null.

export type PodQos = 'guaranteed' | 'burstable' | 'besteffort';
export type CgroupDriver = 'cgroupfs' | 'systemd';
export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker';

export interface PodCgroup {
  /** The kubelet's pod UID: a UUID in dashed lowercase form, or a static pod's 32-hex hash. */
  podUid: string;
  driver: CgroupDriver;
  /** Null when the QoS level is above the visible part of a cgroup-namespace-relative path. */
  qos: PodQos | null;
  /**
   * The container (or the sandbox: runtimes create the pause container like any other) the process
   * is in; null for a process directly in the pod cgroup or in a child whose name is not a
   * runtime's.
   */
  containerId: string | null;
  /** Null when the name does not say: cgroupfs names containerd's and docker's containers alike. */
  runtime: ContainerRuntime | null;
  /** CRI-O's monitor process: it lives in the pod's cgroup but in the host's namespaces. */
  conmon: boolean;
  /** The path climbed out of the reader's cgroup namespace (`..` components). */
  relative: boolean;
  /** The cgroup was removed under the process: it has exited and is waiting to be reaped. */
  deleted: boolean;
  /** The path the answer was read from. */
  path: string;
}

const UUID_DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_UNDERSCORED = /^[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}$/;
const STATIC_HASH = /^[0-9a-f]{32}$/;

/**
 * The canonical form of a pod UID as this module reports it, from any spelling a cgroup or the
 * API uses (dashed, underscored, any case); null when it is not a pod UID at all.
 */
export function normalisePodUid(uid: string): string | null {
  const lower = uid.trim().toLowerCase();
  if (UUID_DASHED.test(lower)) return lower;
  if (UUID_UNDERSCORED.test(lower)) return lower.replaceAll('_', '-');
  // A static pod's hash is kept as the kubelet spells it: dashing it would make a UID that no
  // object or annotation carries.
  if (STATIC_HASH.test(lower)) return lower;
  return null;
}

const UID_DASHED_SRC = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const UID_UNDERSCORED_SRC = '[0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12}';
const HASH_SRC = '[0-9a-f]{32}';

// The pod slice's name repeats its whole ancestry (systemd's naming rule), so this one component
// identifies a kubelet pod cgroup even when the parents are hidden by a cgroup namespace.
const SYSTEMD_POD = new RegExp(`^(?:[^/]+-)?kubepods(?:-(burstable|besteffort))?-pod(${UID_UNDERSCORED_SRC}|${HASH_SRC})\\.slice$`, 'i');
const CGROUPFS_POD = new RegExp(`^pod(${UID_DASHED_SRC}|${HASH_SRC})$`, 'i');

const CONTAINER_ID = '[0-9a-f]{64}';
const SYSTEMD_CONTAINER = new RegExp(`^(cri-containerd|crio-conmon|crio|docker)-(${CONTAINER_ID})\\.scope$`, 'i');
const CGROUPFS_CONTAINER = new RegExp(`^(?:(cri-containerd|crio-conmon|crio|docker)-)?(${CONTAINER_ID})$`, 'i');

const RUNTIME_BY_PREFIX: Record<string, ContainerRuntime> = {
  'cri-containerd': 'containerd',
  crio: 'cri-o',
  'crio-conmon': 'cri-o',
  docker: 'docker',
};

interface ContainerPart {
  containerId: string | null;
  runtime: ContainerRuntime | null;
  conmon: boolean;
}

function containerPart(name: string | undefined, pattern: RegExp): ContainerPart {
  const m = name === undefined ? null : name.match(pattern);
  if (!m) return { containerId: null, runtime: null, conmon: false };
  const prefix = m[1]?.toLowerCase();
  return {
    containerId: m[2]!.toLowerCase(),
    runtime: prefix === undefined ? null : (RUNTIME_BY_PREFIX[prefix] ?? null),
    conmon: prefix === 'crio-conmon',
  };
}

/**
 * Reads one cgroup path (the third field of a /proc/<pid>/cgroup line). Components below the
 * container (a `container` subgroup crun makes for CRI-O, a nested systemd's own cgroups) do not
 * change the answer.
 */
export function parsePodCgroupPath(rawPath: string): PodCgroup | null {
  let path = rawPath.trim();
  let deleted = false;
  // The kernel appends this to a dying task's path once its cgroup has been rmdir'ed.
  if (path.endsWith(' (deleted)')) {
    deleted = true;
    path = path.slice(0, -' (deleted)'.length);
  }
  if (!path.startsWith('/')) return null;
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  const relative = parts[0] === '..';

  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    const sd = name.match(SYSTEMD_POD);
    if (sd) {
      const qosWord = sd[1]?.toLowerCase() as PodQos | undefined;
      return {
        podUid: normalisePodUid(sd[2]!)!,
        driver: 'systemd',
        qos: qosWord ?? 'guaranteed',
        ...containerPart(parts[i + 1], SYSTEMD_CONTAINER),
        relative,
        deleted,
        path,
      };
    }
    const fs = name.match(CGROUPFS_POD);
    if (fs) {
      const qos = cgroupfsQos(parts, i);
      if (qos === undefined) continue;
      return {
        podUid: normalisePodUid(fs[1]!)!,
        driver: 'cgroupfs',
        qos,
        ...containerPart(parts[i + 1], CGROUPFS_CONTAINER),
        relative,
        deleted,
        path,
      };
    }
  }
  return null;
}

// A bare `pod<uuid>` directory is only the kubelet's under its kubepods tree; anything else named
// like that is someone else's. Returns undefined for "not a kubelet pod cgroup", null for "a pod
// cgroup whose QoS the cgroup namespace hides".
function cgroupfsQos(parts: string[], podIndex: number): PodQos | null | undefined {
  const parent = parts[podIndex - 1]?.toLowerCase();
  const grandparent = parts[podIndex - 2]?.toLowerCase();
  if (parent === 'kubepods') return 'guaranteed';
  if (parent === '..') return null;
  if ((parent === 'burstable' || parent === 'besteffort') && (grandparent === 'kubepods' || grandparent === '..')) return parent;
  return undefined;
}

interface CgroupLine {
  hierarchy: string;
  controllers: string;
  path: string;
}

function lines(content: string): CgroupLine[] {
  const out: CgroupLine[] = [];
  for (const line of content.split('\n')) {
    // The path itself may contain ':' (cgroup names may), so only the first two separate fields.
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    out.push({ hierarchy: line.slice(0, first), controllers: line.slice(first + 1, second), path: line.slice(second + 1) });
  }
  return out;
}

// The unified hierarchy first: on v2 and hybrid hosts it is where systemd and the runtimes place
// every process. Then systemd's named v1 hierarchy, which also holds every process. Then any v1
// controller: with the cgroupfs driver on a hybrid host, the unified line may still show the
// runtime's service while the controllers show the pod.
function preference(line: CgroupLine): number {
  if (line.hierarchy === '0' && line.controllers === '') return 0;
  if (line.controllers === 'name=systemd') return 1;
  return 2;
}

/**
 * The pod a process belongs to, from the content of its /proc/<pid>/cgroup (v1, v2 or hybrid);
 * null when no line names a kubelet pod cgroup.
 */
export function parsePodCgroup(content: string): PodCgroup | null {
  const ordered = lines(content)
    .map((line, index) => ({ line, index }))
    .sort((a, b) => preference(a.line) - preference(b.line) || a.index - b.index);
  for (const { line } of ordered) {
    const found = parsePodCgroupPath(line.path);
    if (found) return found;
  }
  return null;
}
