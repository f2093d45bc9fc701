// The shaping controller's reconcile without an API server, for the stages that have none (the
// dataplane and the stock-kernel VM): pods and namespaces live in a map, and every reconcile goes
// through the same model, resolver and qdisc code the agent runs against the real kernel.
//
//   const node = await makeNetns(t);
//   const box = await podSandbox(t, node, '10.244.1.5');
//   const shaper = podShaper(node);
//   await shaper.apply(box, { 'kubernetes.io/egress-bandwidth': '10M' });
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';

import { Metrics } from '../../lib/controller/metrics.js';
import { DEFAULT_SHAPING_CONFIG } from '../../lib/controller/shaping/config.js';
import { ShapingMetrics } from '../../lib/controller/shaping/metrics.js';
import { ShapingReconciler } from '../../lib/controller/shaping/reconciler.js';
import { AppliedTimes } from '../../lib/controller/shaping/state-file.js';
import { makeNetns, type TestNetns } from './netns.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface PodSandbox {
  pod: TestNetns;
  hostVeth: string;
  ip: string;
  name: string;
}

let boxes = 0;

/**
 * A pod namespace joined to `node` by a veth the way a veth CNI joins it: eth0 inside, the IP
 * routed on-link to the host end. Given `pod`, a new sandbox veth for that namespace (a
 * re-created sandbox).
 */
export async function podSandbox(t: Teardown, node: TestNetns, ip: string, existing?: TestNetns): Promise<PodSandbox> {
  const pod = existing ?? (await makeNetns(t));
  const hostVeth = `vps${process.pid % 10000}x${++boxes}`;
  await node.exec('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
  await pod.exec('ip', ['addr', 'add', `${ip}/32`, 'dev', 'eth0']);
  await pod.exec('ip', ['link', 'set', 'eth0', 'up']);
  await node.exec('ip', ['link', 'set', hostVeth, 'up']);
  await node.exec('ip', ['route', 'replace', ip, 'dev', hostVeth, 'scope', 'link']);
  return { pod, hostVeth, ip, name: `pod-${boxes}` };
}

/** Gives the node an address the pod can reach (192.0.2.1 on lo) and the pod a default route to it. */
export async function nodeAddress(node: TestNetns, box: PodSandbox): Promise<string> {
  await node.exec('ip', ['addr', 'replace', '192.0.2.1/32', 'dev', 'lo']);
  await box.pod.exec('ip', ['route', 'replace', '192.0.2.1/32', 'dev', 'eth0', 'scope', 'link']);
  return '192.0.2.1';
}

export interface RecordedEvent {
  type: 'Normal' | 'Warning';
  pod: string;
  reason: string;
  message: string;
}

export interface PodShaper {
  reconciler: ShapingReconciler;
  metrics: Metrics;
  /**
   * Sets the pod's annotations (a new pod on first use) and reconciles it; the shaping label is on
   * its namespace unless `gate` is false. Resolves with the Events that reconcile recorded.
   */
  apply(box: PodSandbox, annotations: Record<string, string>, options?: { gate?: boolean }): Promise<RecordedEvent[]>;
  /** Deletes the pod object and reconciles. */
  remove(box: PodSandbox): Promise<RecordedEvent[]>;
}

export function podShaper(node: TestNetns): PodShaper {
  const pods = new Map<string, V1Pod>();
  const namespaces = new Map<string, V1Namespace>();
  const metrics = new Metrics();
  const recorded: RecordedEvent[] = [];
  const record = (type: RecordedEvent['type']) => (object: { namespace: string; name: string }, reason: string, message: string) =>
    void recorded.push({ type, pod: `${object.namespace}/${object.name}`, reason, message });
  const reconciler = new ShapingReconciler({
    config: { ...DEFAULT_SHAPING_CONFIG, procRoot: null, stateFile: null },
    nodeName: 'node-a',
    netns: node.path,
    pods: { get: (name: string, namespace?: string) => pods.get(`${namespace}/${name}`), list: () => [...pods.values()] },
    namespaces: { get: (name: string) => namespaces.get(name) },
    events: { warning: record('Warning'), normal: record('Normal') },
    metrics,
    shapingMetrics: new ShapingMetrics(metrics.registry),
    appliedTimes: new AppliedTimes(null, { warn: () => {} }),
    log: pino({ level: 'silent' }),
  });
  return {
    reconciler,
    metrics,
    async apply(box, annotations, options = {}) {
      namespaces.set('shaped', { metadata: { name: 'shaped', labels: options.gate === false ? {} : { 'nodenet.io/shaping': 'enabled' } } });
      pods.set(`shaped/${box.name}`, {
        metadata: { namespace: 'shaped', name: box.name, uid: `uid-${box.name}`, annotations },
        spec: { nodeName: 'node-a', containers: [] },
        status: { phase: 'Running', podIP: box.ip },
      });
      recorded.length = 0;
      await reconciler.reconcile(`shaped/${box.name}`);
      return recorded.splice(0);
    },
    async remove(box) {
      pods.delete(`shaped/${box.name}`);
      recorded.length = 0;
      await reconciler.reconcile(`shaped/${box.name}`);
      return recorded.splice(0);
    },
  };
}
