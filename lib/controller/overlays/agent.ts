// The overlay controller assembled: Links and Nodes in, one whole-node key, this node's status out.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { Controller } from '../controller.js';
import type { Metrics } from '../metrics.js';
import { overlayInformers } from './informers.js';
import { CONTROLLER, OverlayMetrics, OverlayReconciler } from './reconciler.js';
import { NodeStatusWriter } from './status.js';

export interface OverlayAgentOptions {
  nodeName: string;
  resyncPeriodMs: number;
  kubeConfig: KubeConfig;
  netns?: string;
  metrics: Metrics;
  log: Logger;
}

export interface RunningOverlays {
  controller: Controller;
  start(): void;
  stop(): Promise<void>;
}

export function startOverlays(o: OverlayAgentOptions): RunningOverlays {
  const log = o.log.child({ controller: CONTROLLER });
  const informers = overlayInformers(o.kubeConfig, log);
  const reconciler = new OverlayReconciler({
    nodeName: o.nodeName,
    ...(o.netns === undefined ? {} : { netns: o.netns }),
    informers,
    status: new NodeStatusWriter(o.kubeConfig, o.nodeName, log),
    metrics: o.metrics,
    overlayMetrics: new OverlayMetrics(o.metrics.registry),
    log,
  });
  const controller = new Controller({
    name: CONTROLLER,
    informers: [informers.links, informers.nodes],
    reconcile: () => reconciler.reconcile(),
    resyncPeriodMs: o.resyncPeriodMs,
    metrics: o.metrics,
    log,
  });
  return {
    controller,
    start() {
      void controller.start();
    },
    stop: () => controller.stop(),
  };
}
