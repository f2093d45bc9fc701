// Stock-kernel stage: NOTRACK for DNS in IPVS mode, proven with packets. A pod asks the DNS cluster
// IP (IPVS to a DNS pod); the answer comes from that IP, and no conntrack entry is made for it;
// other traffic is still tracked; the DNS pod's own upstream queries (masqueraded, tracked) work.
import { spawn } from 'node:child_process';

import t from 'tap';

import { netfilter } from '../../../lib/kernel/index.js';
import { applyOrder, parseFixesConfig, render } from '../../../lib/model/index.js';
import { runAllowingFailure } from '../../helpers/exec.js';
import { makeNetns, type TestNetns } from '../../helpers/netns.js';

// A tiny DNS server: answers NAME.local.test itself, forwards other names to an upstream.
const DNS_SERVER = `
const dgram = require('node:dgram');
const [address, answer, upstream] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
function reply(query, ip) {
  const a = Buffer.from(query);
  a.writeUInt16BE(0x8180, 2); a.writeUInt16BE(1, 6);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...ip.split('.').map(Number)]);
  return Buffer.concat([a, rr]);
}
s.on('message', (q, from) => {
  const name = q.subarray(12).toString('latin1');
  if (!upstream || name.includes('local')) return s.send(reply(q, answer), from.port, from.address);
  const u = dgram.createSocket('udp4');
  u.on('message', (r) => { s.send(r, from.port, from.address); u.close(); });
  u.send(q, 53, upstream);
});
s.bind(53, address, () => console.log('up'));`;

function start(ns: TestNetns, args: string[], t: { teardown(fn: () => unknown): void }): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', DNS_SERVER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  return new Promise((resolve) => child.stdout.once('data', () => resolve()));
}

for (const backend of [netfilter.legacyBackend, netfilter.nftBackend]) t.test(`dig through NOTRACK (${backend.name}): answered from the cluster IP, untracked; upstream still works`, async (t) => {
  const node = await makeNetns(t);
  await node.exec('ipvsadm', ['-Ln']); // says at once when the kernel has no IPVS
  const [pod, dns, upstream] = [await makeNetns(t), await makeNetns(t), await makeNetns(t)];
  const ip = (ns: TestNetns, ...args: string[]) => ns.exec('ip', args);
  await ip(node, 'link', 'add', 'veth-pod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  await ip(node, 'link', 'add', 'veth-dns', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', dns.name);
  await ip(node, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', upstream.name);
  await ip(pod, 'addr', 'add', '10.244.0.2/24', 'dev', 'eth0');
  await ip(node, 'addr', 'add', '10.244.0.1/24', 'dev', 'veth-pod');
  await ip(node, 'addr', 'add', '10.244.1.1/24', 'dev', 'veth-dns');
  await ip(dns, 'addr', 'add', '10.244.1.5/24', 'dev', 'eth0');
  await ip(node, 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0');
  await ip(upstream, 'addr', 'add', '192.0.2.53/24', 'dev', 'eth0');
  for (const [ns, dev] of [[pod, 'eth0'], [dns, 'eth0'], [upstream, 'eth0'], [node, 'veth-pod'], [node, 'veth-dns'], [node, 'eth0']] as const) await ip(ns, 'link', 'set', dev, 'up');
  await ip(pod, 'route', 'add', 'default', 'via', '10.244.0.1');
  await ip(dns, 'route', 'add', 'default', 'via', '10.244.1.1');
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await node.exec('sysctl', ['-qw', 'net.ipv4.vs.conntrack=1']);
  // kube-proxy (IPVS): the DNS Service on kube-ipvs0, balanced to the DNS pod; pods masqueraded out.
  await ip(node, 'link', 'add', 'kube-ipvs0', 'type', 'dummy');
  await ip(node, 'addr', 'add', '10.96.0.10/32', 'dev', 'kube-ipvs0');
  await node.exec('ipvsadm', ['-A', '-u', '10.96.0.10:53', '-s', 'rr']);
  await node.exec('ipvsadm', ['-a', '-u', '10.96.0.10:53', '-r', '10.244.1.5:53', '-m']);
  if (backend.name === 'nftables') {
    await node.exec('nft', ['-f', '-'], 'table ip kube {\n  chain nat-postrouting { type nat hook postrouting priority srcnat; ip saddr 10.244.0.0/16 oifname "eth0" masquerade; }\n}\n');
  } else {
    await node.exec('iptables-legacy', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.244.0.0/16', '-o', 'eth0', '-j', 'MASQUERADE']);
  }
  await start(dns, ['10.244.1.5', '1.2.3.4', '192.0.2.53'], t);
  await start(upstream, ['192.0.2.53', '5.6.7.8', ''], t);

  const parsed = parseFixesConfig({ RULE_NOT_TRACK_DNS_ENABLE: 'true' });
  if ('errors' in parsed) throw new Error(parsed.errors.join('; '));
  const desired = render({
    config: parsed.config,
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services: [{ metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } }],
    dnsEndpointSlices: [{ metadata: { namespace: 'kube-system', name: 'kube-dns-a', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] }],
    node: { metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.0.0/16'] } },
  });
  t.same(desired.findings.filter((f) => f.severity === 'warning'), [], 'no warnings');
  for (const state of applyOrder(desired)) await backend.apply(state, { netns: node.path });
  await runAllowingFailure('ip', ['netns', 'exec', node.name, 'conntrack', '-F']);

  const dig = await runAllowingFailure('ip', ['netns', 'exec', pod.name, 'dig', '@10.96.0.10', 'a.local.test', 'A', '+tries=2', '+time=3']);
  t.match(dig.stdout, /a\.local\.test\.\s+60\s+IN\s+A\s+1\.2\.3\.4/, 'answered');
  t.match(dig.stdout, /SERVER: 10\.96\.0\.10#53/, 'from the cluster IP');
  const tracked = await runAllowingFailure('ip', ['netns', 'exec', node.name, 'conntrack', '-L', '-p', 'udp']);
  t.notMatch(tracked.stdout, /dport=53\b/, `no conntrack entry for the query: ${tracked.stdout.trim()}`);

  const up = await runAllowingFailure('ip', ['netns', 'exec', pod.name, 'dig', '@10.96.0.10', 'example.org', 'A', '+tries=2', '+time=3']);
  t.match(up.stdout, /example\.org\.\s+60\s+IN\s+A\s+5\.6\.7\.8/, "the DNS pod's upstream query is answered");
  const other = await runAllowingFailure('ip', ['netns', 'exec', pod.name, process.execPath, '-e',
    "const s = require('node:dgram').createSocket('udp4'); s.send('x', 9999, '192.0.2.53', () => s.close());"]);
  t.equal(other.code, 0);
  const after = await runAllowingFailure('ip', ['netns', 'exec', node.name, 'conntrack', '-L', '-p', 'udp']);
  t.match(after.stdout, /src=10\.244\.0\.2 dst=192\.0\.2\.53 sport=\d+ dport=9999/, 'other UDP is still tracked');
  t.match(after.stdout, /src=10\.244\.1\.5 dst=192\.0\.2\.53 sport=\d+ dport=53/, 'the upstream query is tracked (and masqueraded)');
});
