// The overlay controller's reconcile: one key for the whole node. Every Link and Node change, and
// every resync, recomputes this node's plan (lib/model/overlays), makes the kernel match it, and
// writes this node's NodeNetworkStatus when what it says changed.
import type { V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

import { links } from '../../kernel/index.js';
import { desiredOverlay, type NodeInput } from '../../model/overlays/desired.js';
import type { Metrics } from '../metrics.js';
import type { OverlayInformers } from './informers.js';
import { syncOverlay } from './kernel-sync.js';
import type { LinkCondition, NodeStatusWriter } from './status.js';

export const CONTROLLER = 'overlays';

export class OverlayMetrics {
  /** Links that apply to this node, by whether they are ready. */
  readonly links: Gauge<'ready'>;
  readonly changes: Counter;
  readonly statusWrites: Counter;

  constructor(registry: Registry) {
    this.links = new Gauge({ name: 'nodenet_overlay_links', help: 'Link resources that apply to this node, by readiness.', labelNames: ['ready'], registers: [registry] });
    this.changes = new Counter({ name: 'nodenet_overlay_changes_total', help: 'Link and FDB changes made on this node.', registers: [registry] });
    this.statusWrites = new Counter({ name: 'nodenet_overlay_status_writes_total', help: "Writes of this node's NodeNetworkStatus.", registers: [registry] });
  }
}

export interface OverlayReconcilerOptions {
  nodeName: string;
  netns?: string;
  informers: OverlayInformers;
  status: Pick<NodeStatusWriter, 'write'>;
  metrics: Metrics;
  overlayMetrics: OverlayMetrics;
  log: Logger;
}

export function nodeInput(node: V1Node): NodeInput {
  return {
    name: node.metadata?.name ?? '',
    labels: node.metadata?.labels ?? {},
    internalIPs: (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP').map((a) => a.address),
  };
}

export class OverlayReconciler {
  private lastSaid = new Map<string, string>();

  constructor(private readonly o: OverlayReconcilerOptions) {}

  async reconcile(): Promise<void> {
    const { nodeName, log } = this.o;
    const self = this.o.informers.nodes.get(nodeName);
    if (!self) {
      // Without its Node the agent cannot know its labels or address; changing nothing is safer
      // than removing every overlay on a node whose object is being re-registered.
      log.warn({ node: nodeName }, `Node ${nodeName} is not in the cache; overlays left as they are`);
      return;
    }
    const at = this.o.netns === undefined ? {} : { netns: this.o.netns };
    const mtus = Object.fromEntries((await links.list(at)).map((l) => [l.name, l.mtu]));
    const plan = desiredOverlay({
      node: nodeInput(self),
      nodes: this.o.informers.nodes.list().map(nodeInput),
      links: this.o.informers.links.list(),
      facts: { mtus },
    });
    const report = await syncOverlay(plan, at);
    if (report.changes.length) {
      this.o.overlayMetrics.changes.inc(report.changes.length);
      log.info({ changes: report.changes }, `overlays: ${report.changes.join('; ')}`);
    }
    const conditions: LinkCondition[] = plan.verdicts.map((v) => {
      const kernel = v.ok ? report.outcomes.get(v.link) : undefined;
      const failed = kernel && !kernel.ok;
      return {
        link: v.link,
        interfaceName: v.interfaceName,
        ok: v.ok && !failed,
        reason: failed ? kernel.reason : v.reason,
        message: failed ? kernel.message : v.message,
        observedGeneration: v.generation,
      };
    });
    const said = new Map<string, string>();
    for (const c of conditions) {
      const text = c.ok ? c.message : `not ready (${c.reason}): ${c.message}`;
      said.set(c.link, text);
      // Once per change, not every resync: the status object holds it meanwhile.
      if (text && this.lastSaid.get(c.link) !== text) log.warn({ link: c.link, reason: c.reason }, `Link ${c.link} on this node: ${text}`);
    }
    this.lastSaid = said;
    this.o.overlayMetrics.links.set({ ready: 'true' }, conditions.filter((c) => c.ok).length);
    this.o.overlayMetrics.links.set({ ready: 'false' }, conditions.filter((c) => !c.ok).length);
    if (await this.o.status.write(conditions, self)) this.o.overlayMetrics.statusWrites.inc();
  }
}
