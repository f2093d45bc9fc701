// The controller framework every nodenet subsystem (node fixes, shaping, overlays) is built from:
// informers that never give up, a level-triggered work queue, periodic resync, readiness, metrics,
// Events, the node lock and the mass-deletion guard. Each subsystem adds its reconcile function.
export { describeApiError, httpStatus } from './api-errors.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { allReady, Controller, type ControlledInformer, type ControllerOptions } from './controller.js';
export { EventRecorder, type EventObject, type EventRecorderOptions } from './events.js';
export { startHealthServer, type Check, type HealthServer, type HealthServerOptions } from './health-server.js';
export { DEFAULT_RESTART, Informer, type InformerEvent, type InformerLog, type InformerOptions, type InformerSource } from './informer.js';
export { kernelWorkersLive } from './kernel-liveness.js';
export { loadKubeConfig } from './kubeconfig.js';
export { MassDeletionGuard, type GuardDecision, type MassDeletionGuardOptions } from './mass-deletion-guard.js';
export { Metrics, type InformerStatus } from './metrics.js';
export { acquireNodeLock, DEFAULT_NODE_LOCK, NodeLockBusyError } from './node-lock.js';
export { every, type Periodic } from './periodic.js';
export { ConfigError, parseChoice, parseDuration, parseListenAddress } from './settings.js';
export { realTimers, type TimerHandle, type Timers } from './timers.js';
export { DEFAULT_RETRY, WorkQueue, type WorkQueueOptions } from './work-queue.js';
