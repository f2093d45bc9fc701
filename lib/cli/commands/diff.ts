import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';

import { detectBackend } from '../../kernel/netfilter/detect.js';
import { backendFor } from '../../controller/node-fixes/backend.js';
import { applyOrder, render, type Finding } from '../../model/index.js';
import { agentSetupFromEnv } from '../../controller/node-fixes/config.js';
import { observeNodeFacts } from '../../controller/node-fixes/facts.js';
import { dnsEndpointSlices, dnsSliceSelector, nodeInput, serviceInput } from '../../controller/node-fixes/model-input.js';
import { toJson } from '../output.js';
import { configFailure } from './agent.js';

export const diffHelp = `nodenet diff [--netns PATH] [--json]
  What the agent would change on this node right now, changing nothing: lists the cluster once
  (same environment as nodenet agent), renders the desired rules and compares them with the
  kernel's tables through the backend the agent would use (BACKEND, default auto: detected).
  Prints the backend, each table's pending changes and what the model refused or noticed.`;

export async function diffCommand(options: { netns?: string; json: boolean }): Promise<string> {
  const setup = agentSetupFromEnv(process.env);
  if ('errors' in setup) return configFailure('diff', setup.errors);
  const { config, kubeConfig } = setup;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const nodeSelector = `metadata.name=${config.nodeName}`;
  const [services, nodes, slices] = await Promise.all([
    core.listServiceForAllNamespaces(),
    core.listNode({ fieldSelector: nodeSelector }),
    config.fixes.notrackDns
      ? kubeConfig.makeApiClient(DiscoveryV1Api).listEndpointSliceForAllNamespaces({ labelSelector: dnsSliceSelector(config.fixes) })
      : Promise.resolve({ items: [] }),
  ]);
  const where = options.netns === undefined ? {} : { netns: options.netns };
  const facts = await observeNodeFacts(config.proxyMode, options.netns);
  const desired = render({
    config: config.fixes,
    facts,
    services: services.items.flatMap((s) => serviceInput(s) ?? []),
    dnsEndpointSlices: dnsEndpointSlices(config.fixes, slices.items),
    node: nodeInput(nodes.items[0]),
  });
  const choice = await detectBackend({ setting: config.backend, ...where });
  const backend = backendFor(choice.backend);
  const tables = [];
  for (const state of applyOrder(desired)) {
    tables.push({ family: state.family, table: state.table, changes: (await backend.diff(state, where)).changes });
  }
  if (options.json) return toJson({ proxyMode: facts.proxyMode, backend: { name: choice.backend, forced: choice.forced, reason: choice.reason }, tables, findings: desired.findings }) + '\n';
  const lines = [`backend ${choice.backend} (${choice.forced ? 'forced by ' : 'detected: '}${choice.reason})\n`];
  lines.push(...tables.map((t) => (t.changes.length ? `${t.family} ${t.table}:\n${t.changes.map((c) => `  ${c}\n`).join('')}` : `${t.family} ${t.table}: no changes\n`)));
  if (desired.findings.length) lines.push(`findings (proxy mode ${facts.proxyMode}):\n${desired.findings.map(findingLine).join('')}`);
  return lines.join('');
}

function findingLine(f: Finding): string {
  return `  ${f.severity} ${f.fix} ${f.reason}: ${f.message}\n`;
}
