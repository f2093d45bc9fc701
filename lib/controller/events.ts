// Events on the objects a finding (or an action) concerns, so that `kubectl describe service` shows why
// nodenet did not do what its owner expected. Rate-limited per object and reason: a reconcile runs
// every resync period and on every change, and a persistent problem must not become a stream of
// Events (every node's agent reports it). The first occurrence creates an Event; a repeat after
// the interval updates that Event's count and time, as client-go's recorder does; repeats within
// the interval are only counted.
import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';

import { describeApiError, httpStatus } from './api-errors.js';
import type { Metrics } from './metrics.js';
import { realTimers, type Timers } from './timers.js';

export interface EventObject {
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
  uid?: string;
}

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  /** source.component and reportingController ("nodenet"). */
  component: string;
  /** source.host and reportingInstance: the node's name. */
  host: string;
  /** At most one Event per object and reason in this interval (default 10 minutes). */
  minIntervalMs?: number;
  /** And at most this many Events in a burst (default 25) ... */
  burst?: number;
  /** ... refilled at this rate (default 10 per minute), whatever the objects. */
  perMinute?: number;
  metrics?: Metrics;
  log?: { warn(fields: object, message: string): void };
  timers?: Timers;
}

interface Sent {
  at: number;
  namespace: string;
  eventName: string;
  count: number;
}

type EventType = 'Normal' | 'Warning';

const MAX_TRACKED = 10_000;
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly sent = new Map<string, Sent>();
  private readonly minIntervalMs: number;
  private readonly timers: Timers;
  private readonly inFlight = new Set<Promise<void>>();
  private tokens: number;
  private tokensAt: number;

  constructor(private readonly options: EventRecorderOptions) {
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.minIntervalMs = options.minIntervalMs ?? 10 * 60_000;
    this.timers = options.timers ?? realTimers;
    this.tokens = options.burst ?? 25;
    this.tokensAt = this.timers.now();
  }

  /**
   * Records a Warning about `object` unless one with this reason (and `distinct`, when given)
   * went out within the interval. `distinct` separates Events of one reason that say different
   * things (a second bad edit of a pod's annotation must be heard, a repeat of the first not).
   */
  warning(object: EventObject, reason: string, message: string, distinct?: string): void {
    this.record('Warning', object, reason, message, distinct);
  }

  /** Records a Normal Event (something nodenet did), rate-limited as warning() is. */
  normal(object: EventObject, reason: string, message: string, distinct?: string): void {
    this.record('Normal', object, reason, message, distinct);
  }

  private record(type: EventType, object: EventObject, reason: string, message: string, distinct: string | undefined): void {
    const key = `${object.kind}/${object.namespace}/${object.name}/${type}/${reason}${distinct === undefined ? '' : `/${distinct}`}`;
    const now = this.timers.now();
    const last = this.sent.get(key);
    if (last && now - last.at < this.minIntervalMs) {
      this.options.metrics?.events.inc({ reason, outcome: 'suppressed' });
      return;
    }
    // Every node's agent may report the same problem about the same Services: a node-wide cap
    // keeps a misconfiguration from flooding the API server. A throttled Event is tried again at
    // the next reconcile.
    if (!this.takeToken(now)) {
      this.options.metrics?.events.inc({ reason, outcome: 'throttled' });
      return;
    }
    this.forgetOld(now);
    const pending = this.send(key, type, object, reason, message, last).finally(() => this.inFlight.delete(pending));
    this.inFlight.add(pending);
  }

  /** Resolves when every Event being sent has been sent or has failed. */
  async flush(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  private async send(key: string, type: EventType, object: EventObject, reason: string, message: string, last: Sent | undefined): Promise<void> {
    // Marked before the request, so that a reconcile running meanwhile does not send a twin.
    const now = this.timers.now();
    const entry: Sent = last ? { ...last, at: now, count: last.count + 1 } : { at: now, namespace: object.namespace, eventName: eventName(object.name), count: 1 };
    this.sent.set(key, entry);
    const time = new Date();
    try {
      if (last) {
        try {
          await this.core.patchNamespacedEvent(
            { name: entry.eventName, namespace: entry.namespace, body: { count: entry.count, lastTimestamp: time.toISOString(), message } },
            mergePatch,
          );
          this.options.metrics?.events.inc({ reason, outcome: 'sent' });
          return;
        } catch (error) {
          // Events expire (the API server's event TTL, one hour by default): start a new one.
          if (httpStatus(error) !== 404) throw error;
          entry.eventName = eventName(object.name);
          entry.count = 1;
        }
      }
      await this.core.createNamespacedEvent({
        namespace: object.namespace,
        body: {
          metadata: { name: entry.eventName, namespace: object.namespace },
          involvedObject: { kind: object.kind, apiVersion: object.apiVersion, namespace: object.namespace, name: object.name, ...(object.uid ? { uid: object.uid } : {}) },
          reason,
          message,
          type,
          count: entry.count,
          firstTimestamp: time,
          lastTimestamp: time,
          source: { component: this.options.component, host: this.options.host },
          reportingComponent: this.options.component,
          reportingInstance: this.options.host,
        },
      });
      this.options.metrics?.events.inc({ reason, outcome: 'sent' });
    } catch (error) {
      this.options.metrics?.events.inc({ reason, outcome: 'failed' });
      this.options.log?.warn({ object: `${object.namespace}/${object.name}`, reason, error: describeApiError(error) }, 'could not record a Kubernetes Event');
    }
  }

  private takeToken(now: number): boolean {
    const burst = this.options.burst ?? 25;
    const perMs = (this.options.perMinute ?? 10) / 60_000;
    this.tokens = Math.min(burst, this.tokens + (now - this.tokensAt) * perMs);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  // The map only needs entries young enough to suppress a repeat; older ones are dropped once it
  // grows, and past its bound the oldest go too, so churn of short-lived Services cannot grow it.
  private forgetOld(now: number): void {
    if (this.sent.size < MAX_TRACKED) return;
    for (const [key, entry] of this.sent) if (now - entry.at >= this.minIntervalMs) this.sent.delete(key);
    for (const key of this.sent.keys()) {
      if (this.sent.size < MAX_TRACKED) break;
      this.sent.delete(key);
    }
  }
}

function eventName(objectName: string): string {
  return `${objectName}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xfff).toString(16).padStart(3, '0')}`;
}
