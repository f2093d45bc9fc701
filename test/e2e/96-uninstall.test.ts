// Uninstalling: deploy/uninstall.yaml (and the chart's uninstall=true rendering, the same objects:
// 95-helm-kustomize) is a DaemonSet whose init container runs `nodenet cleanup` on every node and
// whose main container then waits. Here: both pass the real API server's dry run; the manifest
// gives the cleanup what the agent's own lock, xtables lock and pod namespaces are; and the exact
// command and arguments of its cleanup container, run against a "node" namespace where an agent
// (as its ServiceAccount, on a real API server) installed a LoadBalancer Service's DNAT, overlay
// links and a shaped pod's qdiscs, first refuse while that agent runs (changing nothing), then,
// after the agent stopped (and left everything in place, as a deleted DaemonSet does), remove
// all of nodenet's state in both backends and nothing of anyone else's: iptables-legacy-save,
// nft, ip link and tc are the witnesses.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { CustomObjectsApi, loadAllYaml, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import t from 'tap';

import { DEFAULT_NODE_LOCK } from '../../lib/controller/node-lock.js';
import { addUplink, applyAgentRbac, lockFileFor, runNodenet, startAgent } from '../helpers/agent.js';
import { startCluster } from '../helpers/cluster.js';
import { repoRoot } from '../helpers/dist.js';
import { run } from '../helpers/exec.js';
import { eventually, kubeFixture, type KubeFixture } from '../helpers/kube.js';
import { makeNetns, type TestNetns } from '../helpers/netns.js';
import { podSandbox } from '../helpers/shaping.js';
import { iptablesRestore, legacyRulesets } from '../helpers/witness.js';

const cluster = await startCluster(t);
await applyAgentRbac(cluster);
const deploy = join(repoRoot, 'deploy');
await cluster.kubectl(['apply', '-f', join(deploy, 'crds')]);
await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/links.nodenet.io', 'crd/nodenetworkstatuses.nodenet.io']);
const custom = cluster.kc.makeApiClient(CustomObjectsApi);

interface EnvVar {
  name: string;
  value?: string;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  securityContext?: { runAsUser?: number; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  priorityClassName?: string;
  tolerations?: unknown[];
  nodeSelector?: Record<string, string>;
  initContainers?: Container[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath: { path: string; type?: string } }>;
}
interface DaemonSet {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}

const readDaemonSet = (file: string): DaemonSet => {
  const objects = (JSON.parse(JSON.stringify(loadAllYaml(readFileSync(join(deploy, file), 'utf8')))) as Array<DaemonSet | null>).filter((o) => o !== null);
  if (objects.length !== 1 || objects[0]!.kind !== 'DaemonSet') throw new Error(`deploy/${file}: expected one DaemonSet`);
  return objects[0]!;
};
const uninstall = readDaemonSet('uninstall.yaml');
const agentDs = readDaemonSet('daemonset-iptables.yaml');
const cleanupContainer = uninstall.spec.template.spec.initContainers?.find((c) => c.name === 'cleanup');
const doneContainer = uninstall.spec.template.spec.containers.find((c) => c.name === 'done');
if (!cleanupContainer || !doneContainer) throw new Error('deploy/uninstall.yaml: no init container "cleanup" or container "done"');

/** The host path mounted at `mountPath` in the container (undefined: not mounted). */
function hostPathAt(spec: PodSpec, c: Container, mountPath: string): string | undefined {
  const mount = c.volumeMounts?.find((m) => m.mountPath === mountPath);
  return mount && spec.volumes.find((v) => v.name === mount.name)?.hostPath.path;
}

/**
 * The manifest's cleanup as a process: no `command`, so the image's ENTRYPOINT (the Dockerfile's,
 * checked to be the CLI) with the container's `args`, and its `env`. The test adds what plays the
 * node: --netns for the node namespace (in the pod, hostNetwork) and the agent's lock file (in the
 * pod, the host's /run/nodenet.lock mounted at the default path: checked below).
 */
function manifestCleanup(node: TestNetns, lockFile: string) {
  const env = Object.fromEntries((cleanupContainer!.env ?? []).map((e) => [e.name, e.value ?? '']));
  return runNodenet([...(cleanupContainer!.args ?? []), '--netns', node.path], { ...env, NODENET_LOCK_FILE: lockFile });
}

// --- witnesses ---


/** `nft list ruleset`, counters left out. */
async function nftRuleset(ns: TestNetns): Promise<string> {
  return (await ns.exec('nft', ['list', 'ruleset'])).replace(/counter packets \d+ bytes \d+/g, 'counter');
}

interface TcQdisc {
  kind: string;
  handle: string;
  dev: string;
  root?: boolean;
  parent?: string;
}
/** Every qdisc as "dev kind handle parent". */
async function qdiscs(ns: TestNetns): Promise<string[]> {
  const all = JSON.parse(await ns.exec('tc', ['-j', 'qdisc', 'show'])) as TcQdisc[];
  return all.map((q) => `${q.dev} ${q.kind} ${q.handle} ${q.root ? 'root' : (q.parent ?? '')}`).sort();
}

interface IpLink {
  ifname: string;
  ifalias?: string;
  master?: string;
  linkinfo?: { info_kind?: string };
}
/** Every link as "name kind alias master". */
async function links(ns: TestNetns): Promise<string[]> {
  const all = JSON.parse(await ns.exec('ip', ['-d', '-j', 'link', 'show'])) as IpLink[];
  return all.map((l) => `${l.ifname} ${l.linkinfo?.info_kind ?? '-'} alias=${l.ifalias ?? ''} master=${l.master ?? ''}`).sort();
}

interface NodeState {
  legacy: string;
  nft: string;
  links: string[];
  nodeQdiscs: string[];
  podQdiscs: string[];
}
async function state(node: TestNetns, pod?: TestNetns): Promise<NodeState> {
  return { legacy: await legacyRulesets(node), nft: await nftRuleset(node), links: await links(node), nodeQdiscs: await qdiscs(node), podQdiscs: pod ? await qdiscs(pod) : [] };
}

const OWNED_QDISC = / (6e6e|6e6f): /;

// --- the manifests ---

t.test('deploy/uninstall.yaml and the chart\'s uninstall rendering pass the API server dry run', async (t) => {
  const plain = await cluster.kubectl(['apply', '--dry-run=server', '-f', join(deploy, 'uninstall.yaml')]);
  t.equal(plain.trim(), 'daemonset.apps/nodenet-cleanup created (server dry run)');
  const helmEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(cluster.stateDir, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(cluster.stateDir, 'helm', 'config'),
    HELM_DATA_HOME: join(cluster.stateDir, 'helm', 'data'),
  };
  const rendered = await run(join(cluster.binDir, 'helm'), ['template', 'nodenet', join(deploy, 'helm', 'nodenet'), '--namespace', 'kube-system', '--set', 'uninstall=true'], { env: helmEnv });
  const chart = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], rendered);
  t.equal(chart.trim(), 'daemonset.apps/nodenet-cleanup created (server dry run)', 'the chart renders that DaemonSet alone');
});

t.test('the cleanup DaemonSet covers the agent\'s nodes and shares its locks and pod namespaces', async (t) => {
  const pod = uninstall.spec.template.spec;
  const agent = agentDs.spec.template.spec;
  const agentContainer = agent.containers[0]!;
  t.match(uninstall.metadata, { name: 'nodenet-cleanup', namespace: 'kube-system' });
  t.equal(pod.hostNetwork, true, 'in the node\'s network namespace');
  t.strictSame(pod.tolerations, agent.tolerations, 'the agent\'s tolerations');
  t.equal(pod.priorityClassName, agent.priorityClassName, 'and priority');
  t.strictSame(pod.nodeSelector, agent.nodeSelector, 'and node selection');
  t.equal(pod.serviceAccountName, undefined, 'no ServiceAccount of the agent\'s: cleanup reads no API');
  t.equal(pod.automountServiceAccountToken, false, 'and no token');
  const agentSelector = agentDs.spec.selector.matchLabels;
  t.notOk(Object.entries(agentSelector).every(([k, v]) => uninstall.spec.template.metadata.labels[k] === v), 'the agent\'s DaemonSet does not select cleanup pods');
  t.strictSame(uninstall.spec.selector.matchLabels, uninstall.spec.template.metadata.labels);

  t.equal(cleanupContainer!.image, agentContainer.image, 'the agent\'s image');
  t.equal(cleanupContainer!.command, undefined, 'the image\'s entrypoint…');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
  t.ok(entrypoint, 'the Dockerfile has an ENTRYPOINT');
  t.strictSame(JSON.parse(entrypoint![1]!) as string[], ['/usr/bin/tini', '--', 'node', '/opt/nodenet/dist/lib/cli/nodenet.js'], '…is the nodenet CLI');
  t.strictSame(cleanupContainer!.args, ['cleanup'], 'running `nodenet cleanup`');
  t.equal(cleanupContainer!.env?.some((e) => e.name === 'NODENET_LOCK_FILE'), false, 'at the default lock path…');
  t.equal(hostPathAt(pod, cleanupContainer!, DEFAULT_NODE_LOCK), hostPathAt(agent, agentContainer, DEFAULT_NODE_LOCK), '…which is the host file the agent locks');
  t.ok(hostPathAt(agent, agentContainer, DEFAULT_NODE_LOCK), 'the agent mounts one');
  t.equal(hostPathAt(pod, cleanupContainer!, '/run/xtables.lock'), hostPathAt(agent, agentContainer, '/run/xtables.lock'), 'the node\'s xtables lock');
  const dirs = (cleanupContainer!.env?.find((e) => e.name === 'SHAPING_NETNS_DIRS')?.value ?? '/var/run/netns').split(',');
  const agentDirs = agentContainer.env!.find((e) => e.name === 'SHAPING_NETNS_DIRS')!.value!.split(',');
  t.strictSame(dirs, agentDirs, 'the pod namespace directories the agent shapes in');
  for (const dir of dirs) t.equal(hostPathAt(pod, cleanupContainer!, dir), dir, `${dir} mounted from the host`);
  const caps = cleanupContainer!.securityContext?.capabilities;
  t.strictSame(caps?.drop, ['ALL']);
  t.strictSame(caps?.add, ['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN'], 'netfilter, libiptc\'s raw socket, setns into pod namespaces');
  t.ok(caps!.add!.every((c) => agentContainer.securityContext!.capabilities!.add!.includes(c)), 'nothing the agent does not have');

  t.strictSame(doneContainer!.securityContext?.capabilities?.add, undefined, 'the waiting container has no capability');
  t.equal(doneContainer!.volumeMounts, undefined, 'and no mount');
});

t.test('the waiting container stays up and exits 0 on SIGTERM', async (t) => {
  const [program, ...args] = doneContainer!.command!;
  t.equal(program, 'node', 'the image\'s node');
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(() => void child.kill('SIGKILL'));
  const early = await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('running'), 1500))]);
  t.equal(early, 'running', 'still running after 1.5 s');
  child.kill('SIGTERM');
  t.strictSame(await exited, { code: 0, signal: null }, 'exit 0 on SIGTERM (the DaemonSet\'s deletion)');
});

// --- the real proof ---

async function annotate(k: KubeFixture, pod: string, annotations: Record<string, string>): Promise<void> {
  await k.core.patchNamespacedPod({ name: pod, namespace: k.namespace, body: { metadata: { annotations } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

const FIXES = { PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true', NET_STACK: 'ipv4,ipv6', POD_CIDR_IPV6: 'fd00:10:244:1::/64' };
const FOREIGN_NFT = 'table ip foreign {\n  chain pre {\n    type nat hook prerouting priority -100; policy accept;\n    ip daddr 198.51.100.9 tcp dport 80 dnat to 10.96.0.9\n  }\n}\n';

t.test('legacy backend: refused beside a live agent, then every rule, link and qdisc of nodenet\'s gone and nothing else', async (t) => {
  const k = await kubeFixture(t, cluster);
  const name = `node-${k.namespace}`;
  const node = await makeNetns(t);
  await k.createNode({ name, podCIDRs: ['10.244.1.0/24'], internalIPs: ['192.0.2.11'], labels: { 'uninstall.test/on': k.namespace } });
  await addUplink(node); // uplink0, 192.0.2.11/24: the VXLAN's underlay

  // Someone else's state on the node, all of which must survive: kube-proxy's rules, a DNAT in an
  // nf_tables table of its own, a veth with a tbf, a bridge with an alias; in the pod, another
  // interface with a qdisc of its own.
  await iptablesRestore(node, 'ipv4', readFileSync(join(repoRoot, 'test', 'fixtures', 'kube-proxy.v4.rules'), 'utf8'));
  await node.exec('ip6tables-legacy', ['-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT']);
  await node.exec('nft', ['-f', '-'], FOREIGN_NFT);
  await node.exec('ip', ['link', 'add', 'fq0', 'type', 'veth', 'peer', 'name', 'fq1']);
  await node.exec('ip', ['link', 'set', 'fq0', 'up']);
  await node.exec('tc', ['qdisc', 'add', 'dev', 'fq0', 'root', 'handle', '1:', 'tbf', 'rate', '1mbit', 'burst', '32kb', 'latency', '50ms']);
  await node.exec('ip', ['link', 'add', 'br-foreign', 'type', 'bridge']);
  await node.exec('ip', ['link', 'set', 'br-foreign', 'alias', 'someone:else']);
  const box = await podSandbox(t, node, '10.244.1.31');
  await box.pod.exec('ip', ['link', 'add', 'side0', 'type', 'veth', 'peer', 'name', 'side1']);
  await box.pod.exec('ip', ['link', 'set', 'side0', 'up']);
  await box.pod.exec('tc', ['qdisc', 'add', 'dev', 'side0', 'root', 'handle', '1:', 'tbf', 'rate', '2mbit', 'burst', '32kb', 'latency', '50ms']);
  const before = await state(node, box.pod);

  // What the cluster declares: a LoadBalancer Service in both families, an overlay, a capped pod.
  const svc = await k.createService({
    name: 'web',
    type: 'LoadBalancer',
    allocateLoadBalancerNodePorts: false,
    spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] },
  });
  const clusterIP = svc.spec!.clusterIPs![0]!;
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.96' }, { ip: '2001:db8::96' }]);
  const nodeSelector = { matchLabels: { 'uninstall.test/on': k.namespace } };
  const linkObjects = [
    { metadata: { name: `under-${k.namespace}` }, spec: { interfaceName: 'uplink0', nodeSelector, device: {} } },
    { metadata: { name: `br-${k.namespace}` }, spec: { interfaceName: 'br-nn', nodeSelector, bridge: {} } },
    { metadata: { name: `vx-${k.namespace}` }, spec: { interfaceName: 'vx-nn', nodeSelector, master: `br-${k.namespace}`, vxlan: { vni: 96, underlay: `under-${k.namespace}`, peers: { remote: { address: '192.0.2.50' } } } } },
  ];
  t.teardown(async () => {
    for (const o of linkObjects) await custom.deleteClusterCustomObject({ group: 'nodenet.io', version: 'v1alpha1', plural: 'links', name: o.metadata.name }).catch(() => undefined);
  });
  for (const o of linkObjects) await custom.createClusterCustomObject({ group: 'nodenet.io', version: 'v1alpha1', plural: 'links', body: { apiVersion: 'nodenet.io/v1alpha1', kind: 'Link', ...o } });

  const lockFile = lockFileFor(t);
  const agent = await startAgent(t, { cluster, netns: node, lockFile, env: { ...FIXES, NODE_NAME: name, OVERLAYS: 'true' } });
  await agent.ready();
  await k.createPod({ name: 'capped', nodeName: name, podIPs: [box.ip] });
  await annotate(k, 'capped', { 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '20M' });

  const installed = await eventually(async () => {
    const s = await state(node, box.pod);
    const missing = [
      !new RegExp(`^-A NODENET-EXTERNAL-PODS -s 10\\.244\\.1\\.0/24 -d 203\\.0\\.113\\.96/32 .*-j DNAT --to-destination ${clusterIP.replace(/\./g, '\\.')}:80$`, 'm').test(s.legacy) && 'the IPv4 DNAT',
      !/-A NODENET-EXTERNAL-PODS -s fd00:10:244:1::\/64 -d 2001:db8::96\/128 .*-j DNAT/.test(s.legacy) && 'the IPv6 DNAT',
      !s.links.includes(`br-nn bridge alias=nodenet:link/br-${k.namespace} master=`) && 'the bridge',
      !s.links.includes(`vx-nn vxlan alias=nodenet:link/vx-${k.namespace} master=br-nn`) && 'the VXLAN in it',
      !s.nodeQdiscs.includes(`${box.hostVeth} tbf 6e6e: root`) && 'the ingress tbf',
      !s.podQdiscs.includes('eth0 tbf 6e6e: root') && 'the egress tbf',
    ].filter(Boolean);
    if (missing.length) throw new Error(`waiting for ${missing.join(', ')}:\n${JSON.stringify(s, null, 1)}`);
    return s;
  }, 30_000);
  t.pass('the agent installed a DNAT per family, a bridge with a VXLAN port, and both directions of a pod\'s cap');

  // Beside the live agent: refused, with the reason, and nothing changed.
  const busy = await manifestCleanup(node, lockFile);
  t.equal(busy.code, 1, 'refused while the agent holds the node lock');
  t.match(busy.stderr, /^nodenet cleanup: another nodenet agent already runs on this node: .*; nothing was changed: stop the agent first \(on a cluster, delete its DaemonSet\)\n$/);
  t.equal(busy.stdout, '');
  t.strictSame(await state(node, box.pod), installed, 'not a rule, link or qdisc changed');

  // The agent's DaemonSet deleted: the agent stops and leaves everything in place.
  t.strictSame(await agent.stop(), { code: 0, signal: null });
  t.strictSame(await state(node, box.pod), installed, 'a stopped agent leaves its state (the stale DNAT a cleanup exists for)');

  const cleanup = await manifestCleanup(node, lockFile);
  t.equal(cleanup.code, 0, cleanup.stderr);
  t.match(cleanup.stdout, /^ipv4 nat:\n(  .*\n)*  delete chain NODENET-EXTERNAL-PODS\n/m, 'says what it removed: rules…');
  t.match(cleanup.stdout, /^ipv6 nat:\n(  .*\n)*  delete chain NODENET-EXTERNAL-PODS\n/m);
  t.match(cleanup.stdout, new RegExp(`^qdiscs shaping:\\n(  .*\\n)*  removed tbf 6e6e: from ${box.hostVeth}\\n`, 'm'), '…qdiscs on the node…');
  t.match(cleanup.stdout, new RegExp(`^  removed tbf 6e6e: from eth0 in ${box.pod.path}$`, 'm'), '…and in the pod…');
  t.match(cleanup.stdout, /^links overlays:\n  removed vxlan vx-nn\n  removed bridge br-nn\n/m, '…and links, the VXLAN before its bridge');

  const after = await state(node, box.pod);
  t.notMatch(after.legacy, /NODENET|203\.0\.113\.96|2001:db8::96/, 'iptables-legacy-save: no chain, jump or DNAT of nodenet\'s');
  t.equal(after.legacy, before.legacy, 'exactly the rules from before the agent (kube-proxy\'s, the IPv6 ACCEPT)');
  t.equal(after.nft, before.nft, 'nft: the foreign table as it was, no nodenet table');
  t.match(after.nft, /ip daddr 198\.51\.100\.9 tcp dport 80 dnat to 10\.96\.0\.9/);
  t.strictSame(after.links, before.links, 'ip link: no nodenet link; uplink0 (the Link\'s device), fq0, br-foreign and the pod veth as they were');
  t.notOk(after.links.some((l) => l.includes('alias=nodenet:')));
  t.strictSame(after.nodeQdiscs, before.nodeQdiscs, 'tc on the node: kernel defaults back, fq0\'s tbf 1: untouched');
  t.strictSame(after.podQdiscs, before.podQdiscs, 'tc in the pod: the same, side0\'s tbf 1: untouched');
  t.notOk([...after.nodeQdiscs, ...after.podQdiscs].some((q) => OWNED_QDISC.test(q)), 'no qdisc with nodenet\'s handle anywhere');
  t.ok(after.nodeQdiscs.includes('fq0 tbf 1: root') && after.podQdiscs.includes('side0 tbf 1: root'));

  const again = await manifestCleanup(node, lockFile);
  t.equal(again.stdout, "nothing of nodenet's was left\n", 'a second run (a restarted cleanup pod) has nothing to do');
  t.equal(again.code, 0);
});

t.test('nftables backend: nodenet\'s tables gone, the foreign table and legacy rules untouched', async (t) => {
  const k = await kubeFixture(t, cluster);
  const name = `node-${k.namespace}`;
  const node = await makeNetns(t);
  await k.createNode({ name, podCIDRs: ['10.244.1.0/24'], internalIPs: ['192.0.2.11'] });
  await node.exec('nft', ['-f', '-'], FOREIGN_NFT);
  await node.exec('iptables-legacy', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.244.0.0/16', '-j', 'MASQUERADE']);
  const before = await state(node);

  const svc = await k.createService({ name: 'web', type: 'LoadBalancer', allocateLoadBalancerNodePorts: false });
  await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.97' }]);
  const lockFile = lockFileFor(t);
  const agent = await startAgent(t, { cluster, netns: node, lockFile, env: { NODE_NAME: name, PROXY_MODE: 'ipvs', RULE_EXTERNAL_CLUSTER_ENABLE: 'true', BACKEND: 'nftables', SHAPING: 'false' } });
  await agent.ready();
  const installed = await eventually(async () => {
    const s = await state(node);
    if (!s.nft.includes(`ip daddr 203.0.113.97 tcp dport 80 counter dnat to ${svc.spec!.clusterIP!}:80`)) throw new Error(`no nft DNAT yet:\n${s.nft}`);
    return s;
  }, 20_000);
  t.match(installed.nft, /^table ip nodenet \{/m, 'nodenet\'s own table, with the DNAT');

  const busy = await manifestCleanup(node, lockFile);
  t.equal(busy.code, 1, 'refused beside the live agent');
  t.strictSame(await state(node), installed, 'and nothing changed');
  await agent.stop();

  const cleanup = await manifestCleanup(node, lockFile);
  t.equal(cleanup.code, 0, cleanup.stderr);
  t.match(cleanup.stdout, /^nftables nodenet:\n  /m, 'says it removed the tables');
  const after = await state(node);
  t.notMatch(after.nft, /table ip6? nodenet|203\.0\.113\.97/, 'nft: no nodenet table, no DNAT');
  t.equal(after.nft, before.nft, 'the foreign table exactly as it was');
  t.equal(after.legacy, before.legacy, 'the legacy MASQUERADE as it was');
  t.strictSame(after.links, before.links);
});
