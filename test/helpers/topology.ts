// Network topologies of namespaces for dataplane tests. Addresses exist only inside them.
import { makeNetns, type TestNetns } from './netns.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface MasqueradeNode {
  /** A pod: 10.244.0.2/24 on eth0, default route via the node. */
  pod: TestNetns;
  /** The node: 10.244.0.1 towards the pod (veth-pod), 192.0.2.1 on its uplink (eth0), forwarding,
   * and MASQUERADE for the pod CIDR leaving by the uplink, as a CNI and kube-proxy would set up. */
  node: TestNetns;
  /** Something outside the node: 192.0.2.2/24 on eth0. */
  server: TestNetns;
}

export async function masqueradeNode(t: Teardown): Promise<MasqueradeNode> {
  const [pod, node, server] = [await makeNetns(t), await makeNetns(t), await makeNetns(t)];
  const ip = (ns: TestNetns, ...args: string[]) => ns.exec('ip', args);
  await ip(node, 'link', 'add', 'veth-pod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name);
  await ip(node, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', server.name);
  await ip(pod, 'addr', 'add', '10.244.0.2/24', 'dev', 'eth0');
  await ip(node, 'addr', 'add', '10.244.0.1/24', 'dev', 'veth-pod');
  await ip(node, 'addr', 'add', '192.0.2.1/24', 'dev', 'eth0');
  await ip(server, 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0');
  for (const [ns, dev] of [[pod, 'eth0'], [node, 'veth-pod'], [node, 'eth0'], [server, 'eth0']] as const) await ip(ns, 'link', 'set', dev, 'up');
  await ip(pod, 'route', 'add', 'default', 'via', '10.244.0.1');
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  await node.exec('iptables-legacy', ['-t', 'nat', '-A', 'POSTROUTING', '-s', '10.244.0.0/24', '-o', 'eth0', '-j', 'MASQUERADE']);
  return { pod, node, server };
}
