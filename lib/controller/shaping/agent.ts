// The shaping controller assembled: this node's pods and the namespaces, a key per pod, the
// garbage key after each full pass, and the node's link notifications (a pod whose sandbox is
// re-created gets a new veth, and the pod object may not change at all). Stopping leaves every
// qdisc in place, as the netfilter side leaves its rules: a restarting agent adopts them.
import type { KubeConfig, KubernetesObject, V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { linkMonitor } from '../../kernel/index.js';
import { Controller } from '../controller.js';
import type { EventRecorder } from '../events.js';
import type { Metrics } from '../metrics.js';
import type { ShapingConfig } from './config.js';
import { shapingInformers } from './informers.js';
import { ShapingMetrics } from './metrics.js';
import { CONTROLLER, ShapingReconciler } from './reconciler.js';
import { AppliedTimes } from './state-file.js';

export interface ShapingAgentOptions {
  config: ShapingConfig;
  nodeName: string;
  resyncPeriodMs: number;
  kubeConfig: KubeConfig;
  netns?: string;
  events: EventRecorder | null;
  metrics: Metrics;
  log: Logger;
}

export interface RunningShaping {
  controller: Controller;
  reconciler: ShapingReconciler;
  start(): void;
  stop(): Promise<void>;
}

export async function startShaping(o: ShapingAgentOptions): Promise<RunningShaping> {
  const log = o.log.child({ controller: CONTROLLER });
  const informers = shapingInformers(o.kubeConfig, o.nodeName, log);
  const appliedTimes = new AppliedTimes(o.config.stateFile, log);
  await appliedTimes.load();
  const reconciler = new ShapingReconciler({
    config: o.config,
    nodeName: o.nodeName,
    ...(o.netns === undefined ? {} : { netns: o.netns }),
    pods: informers.pods,
    namespaces: informers.namespaces,
    events: o.events,
    metrics: o.metrics,
    shapingMetrics: new ShapingMetrics(o.metrics.registry),
    appliedTimes,
    log,
  });
  const controller = new Controller({
    name: CONTROLLER,
    informers: [informers.pods, informers.namespaces],
    reconcile: (key) => reconciler.reconcile(key),
    keysFor: (informer, event) => reconciler.keysFor(informer, event.object as KubernetesObject as V1Pod | V1Namespace),
    allKeys: () => reconciler.allKeys(),
    resyncPeriodMs: o.resyncPeriodMs,
    metrics: o.metrics,
    log,
  });
  reconciler.enqueue = (key) => controller.enqueue(key);

  // A new or vanished link on the node may be a pod's sandbox coming or going: revisit the pods
  // nodenet shapes (each checks its cached devices cheaply before resolving again).
  const watch = linkMonitor.watch({
    ...(o.netns === undefined ? {} : { netns: o.netns }),
    onEvent: (event) => {
      // Sandboxes come as veths; a new bridge, tunnel or flag change of another kind is no pod's.
      if (event.type === 'new' && event.kind !== 'veth') return;
      if (controller.synced()) for (const key of reconciler.shapedKeys()) controller.enqueue(key);
    },
    onError: (error: unknown) => log.warn({ err: error }, 'link notifications failed; sandbox changes are noticed at the next resync'),
  });
  watch.unref();

  return {
    controller,
    reconciler,
    start() {
      void controller.start();
    },
    async stop() {
      watch.close();
      await controller.stop();
      await appliedTimes.flush();
    },
  };
}
