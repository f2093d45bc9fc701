// The node fixes' reconcile: the whole desired state from the caches, every table applied in the
// model's safe order, then the UDP flows of every changed external DNAT deleted. Level-triggered:
// whatever changed (or drifted) and however many events came, one run makes the node right.
import { CoreV1Api, type KubeConfig, type V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { conntrack, isKernelError } from '../../kernel/index.js';
import { deepFreeze } from '../../kernel/netfilter/frozen.js';
import { legacyBackend, type IpFamily, type NetfilterBackend, type TableState } from '../../kernel/netfilter/index.js';
import { applyOrder, ModelRenderer, type ModelInput, type ServiceInput } from '../../model/index.js';
import { describeApiError } from '../api-errors.js';
import type { EventRecorder } from '../events.js';
import type { InformerEvent } from '../informer.js';
import { MassDeletionGuard } from '../mass-deletion-guard.js';
import type { Metrics } from '../metrics.js';
import type { AgentConfig } from './config.js';
import { observeNodeFacts } from './facts.js';
import { FindingsReporter } from './findings.js';
import type { NodeFixesInformers } from './informers.js';
import type { NodeFixesMetrics } from './metrics.js';
import { dnsEndpointSlices, nodeInput, serviceInput } from './model-input.js';
import { changedDestinations, kernelUdpDnats, udpDnats, type UdpDnats } from './stale-flows.js';

export const CONTROLLER = 'node-fixes';

export interface NodeFixesReconcilerOptions {
  config: AgentConfig;
  /** The node's network namespace (--netns); the agent's own when absent. */
  netns?: string;
  informers: NodeFixesInformers;
  kubeConfig: KubeConfig;
  metrics: Metrics;
  fixesMetrics: NodeFixesMetrics;
  events: EventRecorder | null;
  log: Logger;
  /** How tables are written (default: legacy iptables through libiptc). */
  backend?: NetfilterBackend;
}

const keyOf = (s: ServiceInput) => `${s.metadata.namespace}/${s.metadata.name}`;

// A first apply on a big node changes tens of thousands of rules, one line each with nftables: the
// log line keeps its size bounded (a multi-megabyte line stalls the agent on a slow log pipe and
// helps nobody). The field holds enough for any one-Service change, the message a glance.
export const LOGGED_CHANGES = 5000;
export const CHANGES_IN_MESSAGE = 20;

/** A commit's change lines as its log line carries them: the first LOGGED_CHANGES, the count, and a summary. */
export function changeLog(changes: readonly string[]): { changes: string[]; total: number; summary: string } {
  const summary =
    changes.length <= CHANGES_IN_MESSAGE
      ? changes.join('; ')
      : `${changes.slice(0, CHANGES_IN_MESSAGE).join('; ')}; … and ${changes.length - CHANGES_IN_MESSAGE} more (${changes.length} in all)`;
  return { changes: changes.slice(0, LOGGED_CHANGES), total: changes.length, summary };
}

export class NodeFixesReconciler {
  private readonly guard = new MassDeletionGuard<ServiceInput>(keyOf);
  private readonly findings: FindingsReporter;
  // Reuses the rules of every Service whose object did not change since the last reconcile.
  private readonly renderer = new ModelRenderer();
  private readonly core: CoreV1Api;
  /** Per family, the UDP DNATs the nat table held after nodenet's last successful apply of it. */
  private readonly dnats = new Map<IpFamily, UdpDnats>();
  private confirmDue = false;
  private lastHeld = 0;

  constructor(private readonly o: NodeFixesReconcilerOptions) {
    this.findings = new FindingsReporter(o.log, o.fixesMetrics, o.events, o.config.nodeName);
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
    o.informers.services.subscribe((e) => this.serviceEvent(e));
  }

  /** A periodic resync is due: held removals may be confirmed by a fresh list. */
  resyncDue(): void {
    this.confirmDue = true;
  }

  async reconcile(): Promise<void> {
    const { config, netns, log } = this.o;
    const facts = await this.kernel(observeNodeFacts(config.proxyMode, netns));
    this.o.fixesMetrics.proxyMode.reset();
    this.o.fixesMetrics.proxyMode.set({ mode: facts.proxyMode }, 1);

    if (this.confirmDue && this.guard.held.length) await this.confirmHeld();
    this.confirmDue = false;
    const cached = this.o.informers.services.list().flatMap((s) => serviceInput(s) ?? []);
    const { objects: services, held } = this.guard.decide(cached);
    this.o.metrics.massDeletionHeld.set({ controller: CONTROLLER }, held.length);
    if (held.length !== this.lastHeld && held.length) {
      log.warn(
        { held: held.length, cached: cached.length, examples: held.slice(0, 5) },
        `${held.length} Services vanished from the cache without DELETE events; their rules stay until a fresh list at the next resync confirms they are gone`,
      );
    }
    this.lastHeld = held.length;

    const node = this.o.informers.node.get(config.nodeName);
    const input: ModelInput = {
      config: config.fixes,
      facts,
      services,
      dnsEndpointSlices: this.o.informers.dnsSlices ? dnsEndpointSlices(config.fixes, this.o.informers.dnsSlices.list()) : [],
      node: nodeInput(node),
    };
    const desired = this.renderer.render(input);
    // The renderer hands back the same rule objects for every Service that did not change, and the
    // agent never edits them: frozen, they are validated and encoded once (the kernel layer
    // remembers deeply frozen rules by identity), so an event costs what changed, not the node.
    for (const table of desired.tables) {
      for (const chain of table.chains) for (const rule of chain.rules) deepFreeze(rule);
      for (const jump of table.jumps) deepFreeze(jump.rule);
    }
    this.findings.report(desired.findings, services, config.fixes);
    this.o.fixesMetrics.services.set(services.length);

    let commits = 0;
    for (const table of applyOrder(desired)) {
      const before = table.table === 'nat' ? await this.dnatsBefore(table.family) : null;
      const result = await this.kernel((this.o.backend ?? legacyBackend).apply(table, netns === undefined ? {} : { netns }));
      const labels = { family: table.family, table: table.table };
      this.o.fixesMetrics.lockWait.observe(labels, result.lockWaitMs / 1000);
      this.o.fixesMetrics.lockHold.observe(labels, result.lockHoldMs / 1000);
      if (result.committed) {
        commits++;
        this.o.fixesMetrics.commits.inc(labels);
        this.o.fixesMetrics.changes.inc(labels, result.changes.length);
        const logged = changeLog(result.changes);
        log.info(
          { ...labels, changes: logged.changes, changesTotal: logged.total, attempts: result.attempts, lockWaitMs: result.lockWaitMs },
          `committed ${table.family} ${table.table}: ${logged.summary}`,
        );
      }
      if (before) await this.deleteStaleFlows(table, before);
    }
    this.o.fixesMetrics.countRules(desired.tables);
    this.guard.applied(services);
    log.debug({ services: services.length, commits, proxyMode: facts.proxyMode }, 'reconciled');
  }

  private serviceEvent(event: InformerEvent<V1Service>): void {
    const { namespace, name } = event.object.metadata ?? {};
    if (event.type === 'delete' && !event.fromList && namespace && name) this.guard.deleted(`${namespace}/${name}`);
  }

  // A list straight from the API server, not the cache: the evidence the guard waits for.
  private async confirmHeld(): Promise<void> {
    let listed: Set<string>;
    try {
      const list = await this.core.listServiceForAllNamespaces();
      listed = new Set(list.items.flatMap((s) => (s.metadata?.namespace && s.metadata.name ? [`${s.metadata.namespace}/${s.metadata.name}`] : [])));
    } catch (error) {
      this.o.log.warn({ error: describeApiError(error) }, 'cannot list Services to confirm the held removals; they stay held');
      return;
    }
    const { confirmed, stillListed } = this.guard.confirm(listed);
    if (confirmed.length) this.o.log.warn({ confirmed: confirmed.length, examples: confirmed.slice(0, 5) }, `a fresh list confirms ${confirmed.length} Services are gone; removing their rules`);
    if (stillListed.length) {
      this.o.log.warn({ stillListed: stillListed.length, examples: stillListed.slice(0, 5) }, `${stillListed.length} held Services still exist in the API server although the cache lacks them; keeping their rules`);
    }
  }

  private async dnatsBefore(family: IpFamily): Promise<UdpDnats> {
    let known = this.dnats.get(family);
    // After a start, what an earlier run left in the kernel is the "before".
    if (!known) this.dnats.set(family, (known = await this.kernel(kernelUdpDnats(family, this.o.netns, (this.o.backend ?? legacyBackend).name))));
    return known;
  }

  private async deleteStaleFlows(table: TableState, before: UdpDnats): Promise<void> {
    const after = udpDnats(table.chains);
    this.dnats.set(table.family, after);
    for (const { destination, port } of changedDestinations(before, after)) {
      try {
        const deleted = await conntrack.deleteFlows({ destination, port, protocol: 'udp', ...(this.o.netns === undefined ? {} : { netns: this.o.netns }) });
        if (deleted) {
          this.o.fixesMetrics.conntrackDeleted.inc({ family: table.family }, deleted);
          this.o.log.info({ destination, port, deleted }, `deleted ${deleted} stale UDP conntrack flows to ${destination}:${port}`);
        }
      } catch (error) {
        // The rules are right; a flow left behind only delays its client until it times out.
        this.countKernelError(error);
        this.o.log.warn({ destination, port, err: error }, 'cannot delete stale UDP conntrack flows');
      }
    }
  }

  private async kernel<T>(call: Promise<T>): Promise<T> {
    try {
      return await call;
    } catch (error) {
      this.countKernelError(error);
      throw error;
    }
  }

  private countKernelError(error: unknown): void {
    if (isKernelError(error)) this.o.metrics.kernelErrors.inc({ op: error.op, code: error.code });
  }
}
