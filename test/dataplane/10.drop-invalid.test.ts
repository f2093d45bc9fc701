// drop-INVALID, proven with packets: a pod's TCP connection leaves the node through MASQUERADE; a
// segment far outside conntrack's window arrives for it. Without the fix the node's own stack
// answers it with a RST that kills the connection; with nodenet's rule the segment is dropped, the
// connection survives and nodenet's counter shows the drop.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import { parseFixesConfig, render, applyOrder } from '../../lib/model/index.js';
import type { FixesConfig } from '../../lib/model/index.js';
import { repoRoot } from '../helpers/dist.js';
import { run } from '../helpers/exec.js';
import type { TestNetns } from '../helpers/netns.js';
import { nftChainPackets, nftTableJson } from '../helpers/witness.js';
import { masqueradeNode } from '../helpers/topology.js';

function config(dropInvalid: boolean): FixesConfig {
  const parsed = parseFixesConfig({ RULE_DROP_INVALID_INPUT_ENABLE: String(dropInvalid) });
  if ('errors' in parsed) throw new Error(parsed.errors.join('; '));
  return parsed.config;
}

type Backend = typeof netfilter.legacyBackend;

async function applyFixes(node: TestNetns, dropInvalid: boolean, backend: Backend): Promise<void> {
  const desired = render({
    config: config(dropInvalid),
    facts: { proxyMode: 'iptables', tcpBeLiberal: false },
    services: [],
    dnsEndpointSlices: [],
    node: { metadata: { name: 'node-a' }, spec: { podCIDRs: ['10.244.0.0/24'] } },
  });
  for (const state of applyOrder(desired)) await backend.apply(state, { netns: node.path });
}

/** A long-lived connection from the pod to the server, driven line by line. */
class Client {
  private readonly lines: string[] = [];
  private waiters: Array<(line: string) => void> = [];
  constructor(readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const w = this.waiters.shift();
      if (w) w(line);
      else this.lines.push(line);
    });
  }
  next(timeoutMs = 10_000): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      this.waiters.push((l) => {
        clearTimeout(timer);
        resolve(l);
      });
    });
  }
  send(word: string): void {
    this.child.stdin.write(word + '\n');
  }
}

interface Outcome {
  /** What the pod saw: before the injection, right after it, and for its next message. */
  before: string[];
  after: string;
  injected: string;
  counter: bigint;
}

async function scenario(t: { teardown(fn: () => unknown): void }, withFix: boolean, backend: Backend): Promise<Outcome> {
  const { pod, node, server } = await masqueradeNode(t);
  await applyFixes(node, withFix, backend);
  const echo = spawn('ip', ['netns', 'exec', server.name, process.execPath, '-e', "require('node:net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(8080, () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => echo.kill('SIGKILL'));
  await new Promise((r) => echo.stdout.once('data', r));
  const clientScript = `const s = require('node:net').connect(8080, '192.0.2.2', () => console.log('connected'));
    s.on('data', (d) => console.log('echo ' + d.toString().trim()));
    s.on('error', (e) => console.log('error ' + e.code));
    s.on('close', () => console.log('closed'));
    require('node:readline').createInterface({ input: process.stdin }).on('line', (l) => s.write(l + '\\n'));`;
  const child = spawn('ip', ['netns', 'exec', pod.name, process.execPath, '-e', clientScript], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  const client = new Client(child);
  const before = [await client.next()];
  client.send('one');
  before.push(await client.next());

  const injector = run('ip', ['netns', 'exec', server.name, '/usr/bin/python3', join(repoRoot, 'test', 'dataplane', 'inject-out-of-window.py'), '--iface', 'eth0', '--server-port', '8080']);
  await new Promise((r) => setTimeout(r, 1500)); // scapy needs a moment to start sniffing
  client.send('two');
  const injected = await injector;
  before.push(await client.next());
  await new Promise((r) => setTimeout(r, 300));
  client.send('three');
  const after = await client.next();
  if (!withFix) return { before, after, injected, counter: 0n };
  if (backend.name === 'nftables') {
    // nft's own view of nodenet's table is the witness here.
    return { before, after, injected, counter: BigInt(nftChainPackets(await nftTableJson(node, 'ip', 'nodenet'), 'filter-NODENET-DROP-INVALID')) };
  }
  const table = await netfilter.read({ netns: node.path, table: 'filter' });
  const counter = table.chains.filter((c) => c.name.startsWith('NODENET-')).flatMap((c) => c.rules).reduce((sum, r) => sum + r.counters.packets, 0n);
  return { before, after, injected, counter };
}

t.test('without the fix the node resets the connection', async (t) => {
  const { before, after, injected } = await scenario(t, false, netfilter.legacyBackend);
  t.same(before, ['connected', 'echo one', 'echo two'], 'the connection worked through MASQUERADE');
  t.match(injected, /"seq"/, `injected ${injected.trim()}`);
  t.match(after, /^(error ECONNRESET|closed)$/, `the connection died: ${after}`);
});

for (const backend of [netfilter.legacyBackend, netfilter.nftBackend]) {
  t.test(`with nodenet's drop-INVALID (${backend.name}) the connection survives`, async (t) => {
    const { before, after, counter } = await scenario(t, true, backend);
    t.same(before, ['connected', 'echo one', 'echo two'], 'the connection worked through MASQUERADE');
    t.equal(after, 'echo three', 'still echoing');
    t.ok(counter >= 1n, `nodenet's rule counted the dropped segment (${counter})`);
  });
}
