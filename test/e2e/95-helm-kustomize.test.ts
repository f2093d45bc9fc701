// The Helm chart (deploy/helm/nodenet) and the kustomizations (deploy/kustomize) are deploy/'s
// plain manifests in other packaging: for the same settings they render the same objects, their
// copies of deploy's files do not drift, every variable the agent reads has a chart value, turning
// shaping off takes away exactly its capabilities and mounts, and every rendering passes the real
// API server's dry run.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import t from 'tap';

import { loadAllYaml } from '@kubernetes/client-node';

import { agentHelp } from '../../lib/cli/commands/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { run } from '../helpers/exec.js';

const cluster = await startCluster(t);

const deploy = join(repoRoot, 'deploy');
const chart = join(deploy, 'helm', 'nodenet');
const helmPath = join(cluster.binDir, 'helm');
// Helm's cache, config and data under the control plane's state dir, never the user's home.
const helmEnv = {
  ...process.env,
  HELM_CACHE_HOME: join(cluster.stateDir, 'helm', 'cache'),
  HELM_CONFIG_HOME: join(cluster.stateDir, 'helm', 'config'),
  HELM_DATA_HOME: join(cluster.stateDir, 'helm', 'data'),
};

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  env: EnvVar[];
  ports: Array<{ name: string; containerPort: number }>;
  securityContext: { capabilities: { add: string[] } };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
}
interface DaemonSet extends KubeObject {
  spec: { template: { spec: { containers: Container[]; volumes: Array<{ name: string; hostPath: { path: string } }>; nodeSelector?: Record<string, string> } } };
}

// loadAllYaml gives client-node's classes (V1EnvVar, …); as plain JSON they compare with objects
// the test builds.
const parse = (text: string): KubeObject[] =>
  (JSON.parse(JSON.stringify(loadAllYaml(text))) as Array<KubeObject | null>).filter((o): o is KubeObject => o !== null);
const deployFile = (...path: string[]) => readFileSync(join(deploy, ...path), 'utf8');
const manifests = (...files: string[]) => files.flatMap((f) => parse(deployFile(f)));
const crdManifests = () => readdirSync(join(deploy, 'crds')).flatMap((f) => manifests(join('crds', f)));

/** The objects by kind, namespace and name: the order files and tools emit them in is not compared. */
function byKey(objects: KubeObject[]): Record<string, KubeObject> {
  const keyed: Record<string, KubeObject> = {};
  for (const o of objects) keyed[`${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`] = o;
  return keyed;
}

const helm = (args: string[]) => run(helmPath, args, { env: helmEnv });
/** `helm template` into kube-system, as the README installs it. */
const helmTemplate = (...args: string[]) => helm(['template', 'nodenet', chart, '--namespace', 'kube-system', ...args]);
const kustomize = (dir: string) => cluster.kubectl(['kustomize', join(deploy, 'kustomize', dir)]);

function daemonSet(objects: KubeObject[]): DaemonSet {
  const found = objects.filter((o) => o.kind === 'DaemonSet');
  if (found.length !== 1) throw new Error(`expected one DaemonSet, rendered ${found.length}`);
  return found[0] as DaemonSet;
}
const container = (ds: DaemonSet) => ds.spec.template.spec.containers[0]!;
const envOf = (ds: DaemonSet) => Object.fromEntries(container(ds).env.map((e) => [e.name, e.value]));

// The overlay kinds, installed for real, as a user installs them before anything that uses them.
await cluster.kubectl(['apply', '-f', join(deploy, 'crds')]);
await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/links.nodenet.io', 'crd/nodenetworkstatuses.nodenet.io']);

t.test("the chart's crds/ and the kustomize base's files are deploy's, byte for byte", async (t) => {
  const crds = readdirSync(join(deploy, 'crds')).sort();
  t.strictSame(crds, ['links.nodenet.io.yaml', 'nodenetworkstatuses.nodenet.io.yaml']);
  const copies: Array<[string, string]> = [
    ...crds.map((f): [string, string] => [join('crds', f), join('helm', 'nodenet', 'crds', f)]),
    ...crds.map((f): [string, string] => [join('crds', f), join('kustomize', 'base', 'crds', f)]),
    ['rbac.yaml', join('kustomize', 'base', 'rbac.yaml')],
    ['daemonset-iptables.yaml', join('kustomize', 'base', 'daemonset-iptables.yaml')],
  ];
  t.strictSame(readdirSync(join(chart, 'crds')).sort(), crds, 'the chart has no other CRD');
  t.strictSame(readdirSync(join(deploy, 'kustomize', 'base', 'crds')).sort(), crds, 'nor the kustomize base');
  for (const [original, copy] of copies) {
    t.ok(deployFile(copy) === deployFile(original), `deploy/${copy} is deploy/${original} (cp deploy/${original} deploy/${copy} after changing it)`);
  }
});

t.test('helm lint passes', async (t) => {
  const out = await helm(['lint', chart]);
  t.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  t.notMatch(out, /\[(WARNING|ERROR)\]/);
});

t.test('the default values render deploy/rbac.yaml and deploy/daemonset-iptables.yaml', async (t) => {
  const rendered = parse(await helmTemplate());
  t.strictSame(byKey(rendered), byKey(manifests('rbac.yaml', 'daemonset-iptables.yaml')));
  const withCrds = parse(await helmTemplate('--include-crds'));
  t.strictSame(byKey(withCrds), byKey([...crdManifests(), ...manifests('rbac.yaml', 'daemonset-iptables.yaml')]), 'and with --include-crds, deploy/crds too');
  t.strictSame(byKey(parse(await helmTemplate('--set', 'proxyMode=iptables,fixes.externalCluster=false'))), byKey(rendered), 'the same when set explicitly');
});

t.test('proxyMode=ipvs renders deploy/daemonset-ipvs.yaml', async (t) => {
  const rendered = parse(await helmTemplate('--set', 'proxyMode=ipvs'));
  t.strictSame(byKey(rendered), byKey(manifests('rbac.yaml', 'daemonset-ipvs.yaml')));
  const noRedirect = envOf(daemonSet(parse(await helmTemplate('--set', 'proxyMode=ipvs,fixes.externalCluster=false'))));
  t.equal(noRedirect['RULE_EXTERNAL_CLUSTER_ENABLE'], 'false', 'the redirect can still be turned off');
});

t.test('rbac.create=false renders the DaemonSet alone', async (t) => {
  const rendered = parse(await helmTemplate('--set', 'rbac.create=false'));
  t.strictSame(byKey(rendered), byKey(manifests('daemonset-iptables.yaml')));
});

t.test('uninstall=true renders deploy/uninstall.yaml instead of the agent and its RBAC', async (t) => {
  const rendered = parse(await helmTemplate('--set', 'uninstall=true'));
  t.strictSame(byKey(rendered), byKey(manifests('uninstall.yaml')));
  // `helm upgrade --reuse-values --set uninstall=true` keeps the install's values: the agent's own
  // settings (and shaping being off now: an earlier release may have shaped pods) change nothing.
  const agentSettings = 'uninstall=true,proxyMode=ipvs,backend=nftables,shaping.enabled=false,shaping.hostProc=false,overlays.enabled=false,rbac.create=false,logLevel=debug';
  t.strictSame(byKey(parse(await helmTemplate('--set', agentSettings))), byKey(rendered), 'whatever the agent was configured with');

  // What it shares with the agent follows the same values.
  interface CleanupPod {
    priorityClassName?: string;
    nodeSelector?: Record<string, string>;
    tolerations?: unknown[];
    initContainers: Array<{ image: string; imagePullPolicy?: string; env: EnvVar[]; resources?: unknown; volumeMounts: Array<{ name: string; mountPath: string }> }>;
    containers: Array<{ image: string; imagePullPolicy?: string }>;
    volumes: Array<{ name: string; hostPath: { path: string } }>;
  }
  const shared = [
    'uninstall=true',
    'image.repository=registry.example/nodenet',
    'image.tag=9.9.9',
    'image.pullPolicy=Always',
    'priorityClassName=node-agents',
    'nodeSelector.kubernetes\\.io/os=linux',
    'tolerations=null',
    'resources.requests.cpu=50m',
    'shaping.netnsDirs={/var/run/netns,/run/docker/netns}',
  ];
  const ds = daemonSet(parse(await helmTemplate('--set', shared.join(',')))) as unknown as { metadata: { name: string }; spec: { template: { spec: CleanupPod } } };
  const pod = ds.spec.template.spec;
  const cleanup = pod.initContainers[0]!;
  t.equal(ds.metadata.name, 'nodenet-cleanup');
  for (const c of [cleanup, pod.containers[0]!]) t.match(c, { image: 'registry.example/nodenet:9.9.9', imagePullPolicy: 'Always' }, 'the image');
  t.equal(pod.priorityClassName, 'node-agents');
  t.strictSame(pod.nodeSelector, { 'kubernetes.io/os': 'linux' });
  t.equal(pod.tolerations, undefined);
  t.match(cleanup.resources, { requests: { cpu: '50m' } }, 'the agent\'s resources for the cleanup');
  t.strictSame(cleanup.env, [{ name: 'SHAPING_NETNS_DIRS', value: '/var/run/netns,/run/docker/netns' }]);
  t.strictSame(
    cleanup.volumeMounts.map((m) => [m.name, m.mountPath]),
    [
      ['xtables-lock', '/run/xtables.lock'],
      ['nodenet-lock', '/run/nodenet.lock'],
      ['netns', '/var/run/netns'],
      ['netns-2', '/run/docker/netns'],
    ],
  );
  t.strictSame(pod.volumes.map((v) => [v.name, v.hostPath.path]), cleanup.volumeMounts.map((m) => [m.name, m.mountPath]), 'each from the same path on the host');
});

t.test('the kustomizations render the plain manifests', async (t) => {
  t.strictSame(byKey(parse(await kustomize('base'))), byKey([...crdManifests(), ...manifests('rbac.yaml', 'daemonset-iptables.yaml')]), 'base');
  t.strictSame(byKey(parse(await kustomize('ipvs'))), byKey([...crdManifests(), ...manifests('rbac.yaml', 'daemonset-ipvs.yaml')]), 'ipvs');
});

t.test('every variable the agent reads has a chart value', async (t) => {
  const documented = [...agentHelp.matchAll(/^ {4}([A-Z][A-Z0-9_]+)(?:, ([A-Z][A-Z0-9_]+))?/gm)].flatMap((m) => m.slice(1).filter((v): v is string => v !== undefined));
  t.ok(documented.length >= 20, `agentHelp lists ${documented.length} variables`);
  // The lock is shared with `nodenet cleanup` and every other agent on the node, and the
  // ServiceAccount is the agent's credential in a pod: neither has a value (extraEnv can set them).
  const notValues = ['NODENET_LOCK_FILE', 'KUBECONFIG'];
  const wanted = [...documented.filter((v) => !notValues.includes(v)), 'NODENET_LOG_LEVEL', 'NODENET_KERNEL_THREADS'];

  const values = [
    'proxyMode=ipvs',
    'backend=nftables',
    'fixes.dropInvalidInput=false',
    'fixes.externalCluster=false',
    'fixes.externalIPs=true',
    'fixes.notTrackDns=true',
    'fixes.notTrackDnsServices={kube-dns,dns/coredns}',
    'netStack=ipv4\\,ipv6',
    'podCIDR.ipv4=10.244.0.0/16',
    'podCIDR.ipv6=fd00:10:244::/56',
    'masqueradeBit=15',
    'resyncPeriod=2m',
    'metricsAddress=[::]:9500',
    'shaping.netnsDirs={/var/run/netns,/run/docker/netns}',
    'shaping.hostProc=false',
    'shaping.stateFile=/var/lib/nodenet/shaping.json',
    'overlays.enabled=false',
    'logLevel=debug',
    'kernelThreads=4',
    'nodeSelector.kubernetes\\.io/os=linux',
  ];
  const ds = daemonSet(parse(await helmTemplate('--set', values.join(','), '--set-json', 'extraEnv=[{"name":"NODENET_LOCK_FILE","value":"/run/nodenet.lock"}]')));
  const env = envOf(ds);
  t.strictSame(wanted.filter((v) => !(v in env)), [], 'each is rendered');
  t.strictSame(env, {
    NODE_NAME: undefined,
    PROXY_MODE: 'ipvs',
    BACKEND: 'nftables',
    RULE_EXTERNAL_CLUSTER_ENABLE: 'false',
    RULE_EXTERNAL_IPS_ENABLE: 'true',
    RULE_DROP_INVALID_INPUT_ENABLE: 'false',
    RULE_NOT_TRACK_DNS_ENABLE: 'true',
    RULE_NOT_TRACK_DNS_SERVICES: 'kube-dns,dns/coredns',
    NET_STACK: 'ipv4,ipv6',
    POD_CIDR_IPV4: '10.244.0.0/16',
    POD_CIDR_IPV6: 'fd00:10:244::/56',
    MASQUERADE_BIT: '15',
    METRICS_ADDRESS: '[::]:9500',
    RESYNC_PERIOD: '2m',
    SHAPING: 'true',
    SHAPING_NETNS_DIRS: '/var/run/netns,/run/docker/netns',
    SHAPING_PROC_ROOT: 'none',
    SHAPING_STATE_FILE: '/var/lib/nodenet/shaping.json',
    OVERLAYS: 'false',
    NODENET_LOG_LEVEL: 'debug',
    NODENET_KERNEL_THREADS: '4',
    NODENET_LOCK_FILE: '/run/nodenet.lock',
  });
  const c = container(ds);
  t.strictSame(c.ports, [{ name: 'metrics', containerPort: 9500, protocol: 'TCP' }], 'the metrics port follows METRICS_ADDRESS');
  t.strictSame(c.securityContext.capabilities.add, ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'], 'no SYS_PTRACE without the host /proc');
  t.strictSame(
    c.volumeMounts.map((m) => [m.name, m.mountPath]),
    [
      ['xtables-lock', '/run/xtables.lock'],
      ['nodenet-lock', '/run/nodenet.lock'],
      ['netns', '/var/run/netns'],
      ['netns-2', '/run/docker/netns'],
      ['nodenet-state', '/var/lib/nodenet'],
    ],
  );
  t.strictSame(ds.spec.template.spec.volumes.map((v) => [v.name, v.hostPath.path]), c.volumeMounts.map((m) => [m.name, m.mountPath]), 'each from the same path on the host');
  t.strictSame(ds.spec.template.spec.nodeSelector, { 'kubernetes.io/os': 'linux' });
});

t.test('shaping off takes away exactly SYS_ADMIN, SYS_PTRACE, its variables and its three mounts', async (t) => {
  const off = daemonSet(parse(await helmTemplate('--set', 'shaping.enabled=false')));
  const c = container(off);
  t.strictSame(c.securityContext.capabilities.add, ['NET_ADMIN', 'NET_RAW']);
  t.strictSame(c.volumeMounts.map((m) => m.name), ['xtables-lock', 'nodenet-lock']);
  t.strictSame(off.spec.template.spec.volumes.map((v) => v.name), ['xtables-lock', 'nodenet-lock']);
  t.equal(envOf(off)['SHAPING'], 'false');

  // Everything else is deploy/daemonset-iptables.yaml's.
  const expected = daemonSet(manifests('daemonset-iptables.yaml'));
  const e = container(expected);
  const shapingOnly = ['netns', 'host-proc', 'nodenet-state'];
  e.securityContext.capabilities.add = e.securityContext.capabilities.add.filter((cap) => cap !== 'SYS_ADMIN' && cap !== 'SYS_PTRACE');
  e.volumeMounts = e.volumeMounts.filter((m) => !shapingOnly.includes(m.name));
  expected.spec.template.spec.volumes = expected.spec.template.spec.volumes.filter((v) => !shapingOnly.includes(v.name));
  e.env = e.env.filter((v) => !v.name.startsWith('SHAPING_')).map((v) => (v.name === 'SHAPING' ? { ...v, value: 'false' } : v));
  t.strictSame(off, expected);
});

t.test('every rendering passes the API server dry run', async (t) => {
  const renderings: Array<[string, () => Promise<string>]> = [
    ['chart, default values (with its CRDs)', () => helmTemplate('--include-crds')],
    ['chart, shaping off', () => helmTemplate('--set', 'shaping.enabled=false')],
    ['chart, overlays off', () => helmTemplate('--set', 'overlays.enabled=false')],
    ['chart, IPVS', () => helmTemplate('--set', 'proxyMode=ipvs')],
    ['kustomize base', () => kustomize('base')],
    ['kustomize ipvs', () => kustomize('ipvs')],
  ];
  for (const [name, render] of renderings) {
    const out = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], await render());
    const lines = out.trim().split('\n');
    t.ok(lines.includes('daemonset.apps/nodenet created (server dry run)'), `${name}: the DaemonSet`);
    t.ok(lines.includes('clusterrole.rbac.authorization.k8s.io/nodenet created (server dry run)'), `${name}: its ClusterRole`);
  }
});
