// The node-fixes agent assembled: the node lock, informers, the controller, Events, metrics and the
// health server. `nodenet agent` runs this until SIGTERM; stopping leaves every rule in place (a
// restarting agent must not open a window in which the node has no fixes).
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';

import { Controller, allReady } from '../controller.js';
import { EventRecorder } from '../events.js';
import { startHealthServer, type HealthServer } from '../health-server.js';
import { kernelWorkersLive } from '../kernel-liveness.js';
import { Metrics } from '../metrics.js';
import type { BackendName } from '../../kernel/netfilter/detect.js';
import { acquireNodeLock } from '../node-lock.js';
import { chooseBackend } from './backend.js';
import type { AgentConfig } from './config.js';
import { nodeFixesInformers } from './informers.js';
import { NodeFixesMetrics, readMatchedCounters } from './metrics.js';
import { CONTROLLER, NodeFixesReconciler } from './reconciler.js';
import { startShaping, type RunningShaping } from '../shaping/agent.js';
import { startOverlays, type RunningOverlays } from '../overlays/agent.js';

export interface RunningAgent {
  health: HealthServer;
  controller: Controller;
  /** The shaping controller, when SHAPING is on. */
  shaping: RunningShaping | null;
  /** The overlay controller, when OVERLAYS is on. */
  overlays: RunningOverlays | null;
  /** Stops watching and reconciling; kernel state stays as it is. */
  stop(): Promise<void>;
}

export interface AgentOptions {
  config: AgentConfig;
  kubeConfig: KubeConfig;
  netns?: string;
  log: Logger;
}

/** Starts the agent. Rejects with NodeLockBusyError when another agent runs on the node. */
export async function startNodeFixesAgent({ config, kubeConfig, netns, log }: AgentOptions): Promise<RunningAgent> {
  const lock = await acquireNodeLock(config.lockFile);
  try {
    const metrics = new Metrics();
    let backendName: BackendName = 'iptables-legacy';
    const fixesMetrics = new NodeFixesMetrics(metrics.registry, async () => {
      try {
        return await readMatchedCounters(config.fixes.families, netns, backendName);
      } catch (error) {
        log.warn({ err: error }, "cannot read the counters of nodenet's chains");
        return [];
      }
    });
    // Before any informer: a kernel the agent cannot read stops it here, with the reason.
    const chosen = await chooseBackend({ setting: config.backend, ...(netns === undefined ? {} : { netns }), log, metrics: fixesMetrics });
    backendName = chosen.choice.backend;
    const informers = nodeFixesInformers(kubeConfig, config, log);
    const events = new EventRecorder({ kubeConfig, component: 'nodenet', host: config.nodeName, metrics, log });
    const reconciler = new NodeFixesReconciler({
      config,
      ...(netns === undefined ? {} : { netns }),
      informers,
      kubeConfig,
      metrics,
      fixesMetrics,
      events,
      log,
      backend: chosen.backend,
    });
    const controller = new Controller({
      name: CONTROLLER,
      informers: [informers.services, informers.node, ...(informers.dnsSlices ? [informers.dnsSlices] : [])],
      reconcile: () => reconciler.reconcile(),
      resyncPeriodMs: config.resyncPeriodMs,
      onResync: () => reconciler.resyncDue(),
      metrics,
      log,
    });
    const shaping = config.shaping.enabled
      ? await startShaping({ config: config.shaping, nodeName: config.nodeName, resyncPeriodMs: config.resyncPeriodMs, kubeConfig, ...(netns === undefined ? {} : { netns }), events, metrics, log })
      : null;
    const overlays = config.overlays
      ? startOverlays({ nodeName: config.nodeName, resyncPeriodMs: config.resyncPeriodMs, kubeConfig, ...(netns === undefined ? {} : { netns }), metrics, log })
      : null;
    const controllers = [controller, ...(shaping ? [shaping.controller] : []), ...(overlays ? [overlays.controller] : [])];
    const health = await startHealthServer({
      ...config.listen,
      registry: metrics.registry,
      liveness: () => kernelWorkersLive(),
      readiness: () => allReady(controllers),
    });
    log.info(
      { listen: `${health.host}:${health.port}`, node: config.nodeName, netns: netns ?? null, proxyMode: config.proxyMode, backend: backendName, resyncPeriodMs: config.resyncPeriodMs, lockFile: config.lockFile, shaping: config.shaping.enabled, overlays: config.overlays },
      'nodenet agent started',
    );
    void controller.start();
    shaping?.start();
    overlays?.start();
    return {
      health,
      controller,
      shaping,
      overlays,
      async stop() {
        await Promise.all([controller.stop(), shaping?.stop(), overlays?.stop()]);
        await events.flush();
        await health.close();
        lock.release();
        log.info('nodenet agent stopped; rules left in place');
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}
