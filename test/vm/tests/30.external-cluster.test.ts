// Stock-kernel stage: the External-IP → Cluster-IP fix in IPVS mode, proven with packets. kube-proxy
// (IPVS) puts the load-balancer IP on kube-ipvs0 with no real servers when no endpoint is local
// (externalTrafficPolicy: Local), so a pod on the node cannot reach it. nodenet DNATs the pod's
// traffic to the cluster IP and marks it for kube-proxy's masquerade: the pod reaches a backend,
// and the backend sees the node's address.
import { spawn, type ChildProcess } from 'node:child_process';

import t from 'tap';

import { netfilter } from '../../../lib/kernel/index.js';
import { applyOrder, parseFixesConfig, render, type ServiceInput } from '../../../lib/model/index.js';
import { makeNetns, type TestNetns } from '../../helpers/netns.js';
import { runAllowingFailure } from '../../helpers/exec.js';

const SERVICE: ServiceInput = {
  metadata: { namespace: 'shop', name: 'web' },
  spec: { type: 'LoadBalancer', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
  status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } },
};

interface Cluster {
  pod: TestNetns;
  node: TestNetns;
  backend: TestNetns;
}

type Backend = typeof netfilter.legacyBackend;

async function ipvsNode(t: { teardown(fn: () => unknown): void }, writer: Backend): Promise<Cluster> {
  const node = await makeNetns(t);
  await node.exec('ipvsadm', ['-Ln']); // says at once when the kernel has no IPVS
  const [pod, backend] = [await makeNetns(t), await makeNetns(t)];
  const ip = (ns: TestNetns, ...args: string[]) => ns.exec('ip', args);
  await ip(node, 'link', 'add', 'veth-pod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  await ip(node, 'link', 'add', 'veth-backend', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', backend.name);
  await ip(pod, 'addr', 'add', '10.244.0.2/24', 'dev', 'eth0');
  await ip(node, 'addr', 'add', '10.244.0.1/24', 'dev', 'veth-pod');
  await ip(node, 'addr', 'add', '10.244.1.1/24', 'dev', 'veth-backend');
  await ip(backend, 'addr', 'add', '10.244.1.2/24', 'dev', 'eth0');
  for (const [ns, dev] of [[pod, 'eth0'], [node, 'veth-pod'], [node, 'veth-backend'], [backend, 'eth0']] as const) await ip(ns, 'link', 'set', dev, 'up');
  await ip(pod, 'route', 'add', 'default', 'via', '10.244.0.1');
  await ip(backend, 'route', 'add', 'default', 'via', '10.244.1.1');
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // What kube-proxy's IPVS mode sets up: both addresses on kube-ipvs0, the cluster IP balanced to
  // the backend, the load-balancer IP with no real server (no local endpoint), and masquerade of
  // marked traffic.
  await ip(node, 'link', 'add', 'kube-ipvs0', 'type', 'dummy');
  await ip(node, 'addr', 'add', '10.96.0.10/32', 'dev', 'kube-ipvs0');
  await ip(node, 'addr', 'add', '203.0.113.10/32', 'dev', 'kube-ipvs0');
  await node.exec('ipvsadm', ['-A', '-t', '10.96.0.10:80', '-s', 'rr']);
  await node.exec('ipvsadm', ['-a', '-t', '10.96.0.10:80', '-r', '10.244.1.2:8080', '-m']);
  await node.exec('ipvsadm', ['-A', '-t', '203.0.113.10:80', '-s', 'rr']);
  // kube-proxy's masquerade lives in the same netfilter world as nodenet's rules: a mark set in
  // nodenet's table must be seen by another table's POSTROUTING.
  if (writer.name === 'nftables') {
    await node.exec('nft', ['-f', '-'], 'table ip kube {\n  chain nat-postrouting { type nat hook postrouting priority srcnat; meta mark & 0x4000 == 0x4000 masquerade; }\n}\n');
  } else {
    await node.exec('iptables-legacy', ['-t', 'nat', '-A', 'POSTROUTING', '-m', 'mark', '--mark', '0x4000/0x4000', '-j', 'MASQUERADE']);
  }
  // kube-proxy sets this so that IPVS traffic goes through conntrack and iptables NAT.
  await node.exec('sysctl', ['-qw', 'net.ipv4.vs.conntrack=1']);
  return { pod, node, backend };
}

function serve(ns: TestNetns, t: { teardown(fn: () => unknown): void }): Promise<ChildProcess> {
  const script = "require('node:http').createServer((q, r) => r.end('seen ' + q.socket.remoteAddress)).listen(8080, () => console.log('up'))";
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  return new Promise((resolve) => child.stdout?.once('data', () => resolve(child)));
}

async function get(ns: TestNetns, url: string): Promise<string> {
  const script = `const q = require('node:http').get(${JSON.stringify(url)}, { agent: false, timeout: 3000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b)); });
    q.on('timeout', () => { console.log('timeout'); q.destroy(); }); q.on('error', (e) => console.log('error ' + e.code));`;
  return (await runAllowingFailure('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script])).stdout.trim();
}

async function applyFix(node: TestNetns, proxyMode: 'ipvs' | 'iptables', backend: Backend) {
  const parsed = parseFixesConfig({ RULE_EXTERNAL_CLUSTER_ENABLE: 'true', RULE_DROP_INVALID_INPUT_ENABLE: 'false' });
  if ('errors' in parsed) throw new Error(parsed.errors.join('; '));
  const desired = render({
    config: parsed.config,
    facts: { proxyMode, tcpBeLiberal: false },
    services: [SERVICE],
    dnsEndpointSlices: [],
    node: { metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.0.0/24'] } },
  });
  for (const state of applyOrder(desired)) await backend.apply(state, { netns: node.path });
  return desired;
}

for (const backend of [netfilter.legacyBackend, netfilter.nftBackend]) {
  t.test(`IPVS mode (${backend.name}): the pod reaches the load-balancer IP only with the fix, masqueraded`, async (t) => {
    const { pod, node, backend: server } = await ipvsNode(t, backend);
    await serve(server, t);
    t.match(await get(pod, 'http://10.96.0.10/'), /^seen /, 'the cluster IP works');
    t.match(await get(pod, 'http://203.0.113.10/'), /^(error|timeout)/, 'without the fix the load-balancer IP does not');

    const desired = await applyFix(node, 'ipvs', backend);
    t.same(desired.findings.filter((f) => f.severity === 'warning'), [], 'no warnings');
    t.match(await get(pod, 'http://203.0.113.10/'), /^seen (::ffff:)?10\.244\.1\.1$/, "with it the backend answers, and sees the node's address");
  });

  t.test(`iptables mode (${backend.name}): the fix is refused and nothing is installed`, async (t) => {
    const node = await makeNetns(t);
    const desired = await applyFix(node, 'iptables', backend);
    t.ok(desired.findings.some((f) => f.fix === 'external-cluster' && f.severity === 'warning'), 'a warning says why');
    const nat = await runAllowingFailure('ip', ['netns', 'exec', node.name, 'iptables-legacy-save', '-t', 'nat']);
    t.notMatch(nat.stdout, /DNAT/, 'no DNAT rule in legacy iptables');
    const nft = await runAllowingFailure('ip', ['netns', 'exec', node.name, 'nft', 'list', 'ruleset']);
    t.equal(nft.code, 0, nft.stderr);
    t.notMatch(nft.stdout, /dnat/, 'nor in nf_tables');
  });
}
