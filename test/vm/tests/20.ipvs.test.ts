// Stock-kernel stage: IPVS (configured with ipvsadm, a witness tool) balances a virtual service
// across two real servers in a backend namespace, through a "node" namespace that forwards.
import { spawn, type ChildProcess } from 'node:child_process';

import t from 'tap';

import { makeNetns, type TestNetns } from '../../helpers/netns.js';
import { run } from '../../helpers/exec.js';

function serve(ns: TestNetns, port: number, t: { teardown(fn: () => unknown): void }): Promise<ChildProcess> {
  const script = `require('node:http').createServer((q, r) => r.end('backend:${port}')).listen(${port}, () => console.log('listening'))`;
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`backend on ${port} exited ${code}`)));
  });
}

async function get(ns: TestNetns, url: string): Promise<string> {
  const script = `require('node:http').get(${JSON.stringify(url)}, { agent: false }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b)); }).on('error', (e) => { console.error(e.message); process.exit(1); })`;
  return (await run('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script])).trim();
}

t.test('an IPVS virtual service round-robins to the backends', async (t) => {
  const node = await makeNetns(t);
  // Fails at once, saying so, on a kernel without IPVS.
  await node.exec('ipvsadm', ['-Ln']);
  const client = await makeNetns(t);
  const backend = await makeNetns(t);
  const ip = (ns: TestNetns, ...args: string[]) => ns.exec('ip', args);
  await ip(client, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'to-client', 'netns', node.name);
  await ip(backend, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'to-backend', 'netns', node.name);
  await ip(client, 'addr', 'add', '10.1.0.2/24', 'dev', 'eth0');
  await ip(node, 'addr', 'add', '10.1.0.1/24', 'dev', 'to-client');
  await ip(node, 'addr', 'add', '10.2.0.1/24', 'dev', 'to-backend');
  await ip(backend, 'addr', 'add', '10.2.0.2/24', 'dev', 'eth0');
  for (const [ns, dev] of [[client, 'eth0'], [node, 'to-client'], [node, 'to-backend'], [backend, 'eth0']] as const) await ip(ns, 'link', 'set', dev, 'up');
  await ip(client, 'route', 'add', 'default', 'via', '10.1.0.1');
  await ip(backend, 'route', 'add', 'default', 'via', '10.2.0.1');
  await node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // kube-proxy's IPVS mode: service addresses live on a dummy link so the node accepts them.
  await ip(node, 'link', 'add', 'kube-ipvs0', 'type', 'dummy');
  await ip(node, 'addr', 'add', '10.96.0.10/32', 'dev', 'kube-ipvs0');
  await node.exec('ipvsadm', ['-A', '-t', '10.96.0.10:80', '-s', 'rr']);
  await node.exec('ipvsadm', ['-a', '-t', '10.96.0.10:80', '-r', '10.2.0.2:8080', '-m']);
  await node.exec('ipvsadm', ['-a', '-t', '10.96.0.10:80', '-r', '10.2.0.2:8081', '-m']);
  await Promise.all([serve(backend, 8080, t), serve(backend, 8081, t)]);

  const answers: string[] = [];
  for (let i = 0; i < 4; i++) answers.push(await get(client, 'http://10.96.0.10/'));
  t.same([...answers].sort(), ['backend:8080', 'backend:8080', 'backend:8081', 'backend:8081'], `answers: ${answers.join(', ')}`);
  // The connection table is current at once (the --stats counters are only summed every 2 s).
  const connections = await node.exec('ipvsadm', ['-Lnc']);
  const toBackend = (port: number) => connections.split('\n').filter((l) => l.includes(`10.96.0.10:80`) && l.trim().endsWith(`10.2.0.2:${port}`)).length;
  t.same([toBackend(8080), toBackend(8081)], [2, 2], 'IPVS holds two connections to each real server');
});
