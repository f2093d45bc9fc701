// Rule programming, one scenario family of `npm run bench`: the External-IP fix for N LoadBalancer
// Services (4 rules each) written by nodenet through each backend, into a node whose nat is empty
// and into one already holding 20,000 foreign rules in the same backend (what kube-proxy leaves on
// a big node). Per case: the cold apply, a resync with nothing to change, and a one-Service change
// (one load-balancer IP moves), each the median of several runs in fresh namespaces. Both backends
// must end with the same rules (per chain, in order, by comment) or the run fails.
import { execFileSync } from 'node:child_process';

import { native } from '../lib/kernel/native.js';
import { netfilter } from '../lib/kernel/index.js';
import type { NetfilterBackend, TableState } from '../lib/kernel/netfilter/index.js';
import { decodeComment } from '../lib/kernel/netfilter/nft/userdata.js';
import { applyOrder, parseFixesConfig, render, type ServiceInput } from '../lib/model/index.js';

export interface Sample {
  scenario: string;
  backend: string;
  background: string;
  operation: string;
  ms: number[];
}

const FOREIGN_CHAINS = 2000;
const FOREIGN_PER_CHAIN = 10;

function ns(): { name: string; path: string; close(): void } {
  const name = `nnb-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  execFileSync('ip', ['netns', 'add', name]);
  return { name, path: `/var/run/netns/${name}`, close: () => execFileSync('ip', ['netns', 'del', name]) };
}

function inNs(name: string, cmd: string, args: string[], input?: string): void {
  execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { input, maxBuffer: 1 << 28, stdio: ['pipe', 'ignore', 'inherit'] });
}

/** 20,000 rules in 2,000 chains, shaped like kube-proxy's per-Service chains, in the given backend. */
function foreign(name: string, backend: string): void {
  if (backend === 'iptables-legacy') {
    const lines = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]'];
    for (let c = 0; c < FOREIGN_CHAINS; c++) lines.push(`:KUBE-SVC-${c.toString().padStart(12, '0')} - [0:0]`);
    lines.push('-A PREROUTING -j KUBE-SERVICES', '-A OUTPUT -j KUBE-SERVICES');
    for (let c = 0; c < FOREIGN_CHAINS; c++) {
      const chain = `KUBE-SVC-${c.toString().padStart(12, '0')}`;
      for (let r = 0; r < FOREIGN_PER_CHAIN - 1; r++) lines.push(`-A ${chain} -s 10.${r}.${c >> 8}.${c & 255}/32 -p tcp -m tcp --dport ${1000 + r} -j RETURN`);
      lines.push(`-A KUBE-SERVICES -d 10.96.${c >> 8}.${c & 255}/32 -p tcp -m tcp --dport 80 -j ${chain}`);
    }
    lines.push('COMMIT', '');
    inNs(name, 'iptables-legacy-restore', [], lines.join('\n'));
  } else {
    const lines = ['table ip kube-proxy {', '  chain nat-prerouting { type nat hook prerouting priority dstnat; jump services; }', '  chain services {'];
    for (let c = 0; c < FOREIGN_CHAINS; c++) lines.push(`    ip daddr 10.96.${c >> 8}.${c & 255} tcp dport 80 jump svc-${c}`);
    lines.push('  }');
    for (let c = 0; c < FOREIGN_CHAINS; c++) {
      lines.push(`  chain svc-${c} {`);
      for (let r = 0; r < FOREIGN_PER_CHAIN - 1; r++) lines.push(`    ip saddr 10.${r}.${c >> 8}.${c & 255} tcp dport ${1000 + r} return`);
      lines.push('  }');
    }
    lines.push('}', '');
    inNs(name, 'nft', ['-f', '-'], lines.join('\n'));
  }
}

function services(n: number, moved = -1): ServiceInput[] {
  return Array.from({ length: n }, (_, i) => ({
    metadata: { namespace: 'bench', name: `svc-${i}` },
    spec: { type: 'LoadBalancer', clusterIP: `10.97.${i >> 8}.${i & 255}`, clusterIPs: [`10.97.${i >> 8}.${i & 255}`], ipFamilies: ['IPv4'], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] },
    status: { loadBalancer: { ingress: [{ ip: i === moved ? `198.51.${i >> 8}.${i & 255}` : `203.0.${i >> 8}.${i & 255}` }] } },
  }));
}

function natState(n: number, moved = -1): TableState {
  const parsed = parseFixesConfig({ RULE_DROP_INVALID_INPUT_ENABLE: 'false', RULE_EXTERNAL_CLUSTER_ENABLE: 'true' });
  if ('errors' in parsed) throw new Error(parsed.errors.join('; '));
  const desired = render({
    config: parsed.config,
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services: services(n, moved),
    dnsEndpointSlices: [],
    node: { metadata: { name: 'bench' }, spec: { podCIDRs: ['10.244.0.0/24'] } },
  });
  const nat = applyOrder(desired).find((s) => s.table === 'nat' && s.family === 'ipv4');
  if (!nat) throw new Error('the model rendered no nat table');
  return nat;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** nodenet's nat rules as each backend holds them: "chain: comment" per rule, in order. */
async function ownRules(backend: NetfilterBackend, path: string): Promise<string[]> {
  if (backend.name === 'iptables-legacy') {
    const table = await netfilter.read({ netns: path, table: 'nat' });
    return table.chains
      .filter((c) => c.name.startsWith('NODENET-'))
      .flatMap((c) => c.rules.map((r) => `${c.name}: ${String((r.matches.find((m) => m.name === 'comment')?.options as { comment?: string } | null)?.comment)} ${r.target.kind === 'extension' ? r.target.name : ''}`));
  }
  const dump = await native().nftDump({ family: 2, table: 'nodenet' }, path);
  return dump.rules
    .filter((r) => r.chain.startsWith('nat-NODENET-'))
    .map((r) => `${r.chain.slice(4)}: ${String(decodeComment(r.userdata))} ${r.exprs.some((e) => e.name === 'nat') ? 'DNAT' : 'MARK'}`);
}

export async function ruleProgramming(counts: number[], reps: number): Promise<{ samples: Sample[]; mismatches: string[] }> {
  const samples: Sample[] = [];
  const mismatches: string[] = [];
  for (const n of counts) {
    for (const background of ['empty', '20,000 foreign']) {
      const finals = new Map<string, string[]>();
      for (const backend of [netfilter.legacyBackend, netfilter.nftBackend]) {
        const push = (operation: string, ms: number) => {
          let s = samples.find((x) => x.scenario === `${n} Services` && x.backend === backend.name && x.background === background && x.operation === operation);
          if (!s) samples.push((s = { scenario: `${n} Services`, backend: backend.name, background, operation, ms: [] }));
          s.ms.push(ms);
        };
        for (let rep = 0; rep < reps; rep++) {
          const node = ns();
          try {
            if (background !== 'empty') foreign(node.name, backend.name);
            const where = { netns: node.path };
            const base = natState(n);
            push('cold apply', await timed(() => backend.apply(base, where)));
            push('no-change resync', await timed(async () => {
              const r = await backend.apply(base, where);
              if (r.committed) throw new Error(`${backend.name}: a resync of an unchanged state committed`);
            }));
            const moved = natState(n, n >> 1);
            push('one-Service change', await timed(() => backend.apply(moved, where)));
            if (rep === 0) finals.set(backend.name, await ownRules(backend, node.path));
          } finally {
            node.close();
          }
        }
      }
      // Chains in name order, rules in kernel order: the two backends list chains differently.
      const byChain = (lines: string[] | undefined) => lines && [...lines].sort((x, y) => x.split(':')[0]!.localeCompare(y.split(':')[0]!));
      const [a, b] = [...finals.values()].map(byChain);
      if (!a || !b || a.length !== b.length || a.some((l, i) => l !== b[i])) {
        mismatches.push(`${n} Services, ${background}: iptables-legacy holds ${a?.length} rules, nftables ${b?.length}; first difference: ${a?.find((l, i) => l !== b?.[i])}`);
      } else if (a.length !== 4 * n) {
        mismatches.push(`${n} Services, ${background}: ${a.length} rules instead of ${4 * n}`);
      }
    }
  }
  return { samples, mismatches };
}
