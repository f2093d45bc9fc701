// The objects a cluster's missing controllers and kubelets would have made, written directly.
//
// There is no scheduler, kubelet or controller-manager (test/cluster/README.md): a Node exists
// because a test created it, a Pod is bound by setting spec.nodeName and is "running" because its
// status was patched, a load balancer IP is a patch of Service status, and EndpointSlices are
// created by the test. Each test gets a fresh namespace, emptied and removed in its teardown.
//
//   const cluster = await startCluster(t);
//   t.test('...', async (t) => {
//     const k = await kubeFixture(t, cluster);
//     await k.createNode({ name: 'node-a', podCIDRs: ['10.244.1.0/24'], internalIPs: ['192.168.0.11'] });
//     const svc = await k.createService({ name: 'web', type: 'LoadBalancer' });
//     await k.setLoadBalancerIngress('web', [{ ip: '203.0.113.7', ipMode: 'VIP' }]);
//     await k.createEndpointSlice({ service: 'web', endpoints: [{ addresses: ['10.244.1.5'], nodeName: 'node-a' }] });
//     await k.createPod({ name: 'web-1', nodeName: 'node-a', podIPs: ['10.244.1.5'] });
//   });
import { Agent, request, type RequestOptions } from 'node:https';

import {
  ApiException,
  CoreV1Api,
  DiscoveryV1Api,
  Observable,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type ConfigurationOptions,
  type DiscoveryV1EndpointPort,
  type KubeConfig,
  type V1Endpoint,
  type V1EndpointSlice,
  type V1LoadBalancerIngress,
  type V1Node,
  type V1Pod,
  type V1Service,
  type V1ServicePort,
  type V1ServiceSpec,
} from '@kubernetes/client-node';

import type { TestCluster } from './cluster.js';

/** The part of a tap test the fixture uses. */
export interface FixtureTest {
  name: string;
  teardown(fn: () => unknown): void;
}

export interface NodeOptions {
  name: string;
  podCIDRs?: string[];
  internalIPs?: string[];
  externalIPs?: string[];
  labels?: Record<string, string>;
  /** The Ready condition; default true. */
  ready?: boolean;
}

export interface ServiceOptions {
  name: string;
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** Default: one TCP port 80 -> 8080 named "http". */
  ports?: V1ServicePort[];
  selector?: Record<string, string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** false keeps LoadBalancer Services from using up the NodePort range (about 2,700 ports). */
  allocateLoadBalancerNodePorts?: boolean;
  /** Merged over everything above. */
  spec?: V1ServiceSpec;
}

export interface EndpointSliceOptions {
  service: string;
  /** Default: generated from the service name, as the EndpointSlice controller does. */
  name?: string;
  addressType?: 'IPv4' | 'IPv6' | 'FQDN';
  /** `conditions.ready` defaults to true; `ready`, `serving`, `terminating` are shorthands. */
  endpoints: Array<V1Endpoint & { ready?: boolean; serving?: boolean; terminating?: boolean }>;
  /** Default: one TCP port 8080 named "http" (the default Service port's target). */
  ports?: DiscoveryV1EndpointPort[];
  labels?: Record<string, string>;
}

export interface PodOptions {
  name: string;
  nodeName: string;
  /** The first is status.podIP. */
  podIPs: string[];
  hostIPs?: string[];
  labels?: Record<string, string>;
  /** Default Running. */
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  hostNetwork?: boolean;
}

export interface KubeFixture {
  namespace: string;
  core: CoreV1Api;
  discovery: DiscoveryV1Api;
  /** A Node with spec.podCIDR(s), status.addresses and a Ready condition; deleted in teardown. */
  createNode(options: NodeOptions): Promise<V1Node>;
  createService(options: ServiceOptions): Promise<V1Service>;
  /** Replaces status.loadBalancer.ingress through the status subresource, as a cloud controller would. */
  setLoadBalancerIngress(service: string, ingress: V1LoadBalancerIngress[]): Promise<V1Service>;
  /** Creates Services with `concurrency` requests in flight (default 32); resolves in input order. */
  createServices(services: ServiceOptions[], options?: { concurrency?: number }): Promise<V1Service[]>;
  createEndpointSlice(options: EndpointSliceOptions): Promise<V1EndpointSlice>;
  /** Creates a Pod already bound to `nodeName`, then patches its status to `phase` with its IPs. */
  createPod(options: PodOptions): Promise<V1Pod>;
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** A namespace of the test's own plus helpers that write into it. Needs the admin KubeConfig. */
export async function kubeFixture(t: FixtureTest, cluster: TestCluster): Promise<KubeFixture> {
  const kc = cluster.kc;
  const core = kc.makeApiClient(CoreV1Api);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const namespace = uniqueName(t.name);
  const nodes = new Set<string>();
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'nodenet.io/test': 'e2e' } } } });
  t.teardown(async () => {
    const failures = (
      await Promise.allSettled([
        removeNamespace(kc, core, namespace),
        ...[...nodes].map((name) => ignoreNotFound(core.deleteNode({ name }))),
      ])
    ).flatMap((r) => (r.status === 'rejected' ? [describeError(r.reason)] : []));
    if (failures.length) throw new Error(`cleaning up after test '${t.name}': ${failures.join('; ')}`);
  });

  const createService = (options: ServiceOptions) => core.createNamespacedService({ namespace, body: serviceObject(options) });

  return {
    namespace,
    core,
    discovery,
    async createNode(options) {
      const node = await core.createNode({ body: nodeObject(options) });
      nodes.add(options.name);
      // A kubelet registers its Node and then reports status through the status subresource; do
      // the same, so a watcher sees the ADDED and MODIFIED a real node produces.
      return core.patchNodeStatus({ name: options.name, body: { status: nodeStatus(options) } }, mergePatch).catch((e) => {
        throw withContext(e, `patching status of node ${node.metadata?.name}`);
      });
    },
    createService,
    setLoadBalancerIngress: (service, ingress) =>
      core.patchNamespacedServiceStatus({ name: service, namespace, body: { status: { loadBalancer: { ingress } } } }, mergePatch),
    async createServices(services, { concurrency = 32 } = {}) {
      const { options, agent } = await connectionReuse(kc, concurrency);
      const created = new Array<V1Service>(services.length);
      let next = 0;
      let failed = false;
      const worker = async () => {
        while (next < services.length && !failed) {
          const i = next++;
          created[i] = await core.createNamespacedService({ namespace, body: serviceObject(services[i]!) }, options).catch((e) => {
            failed = true;
            throw withContext(e, `creating service ${services[i]!.name}`);
          });
        }
      };
      // Every worker settles before the agent goes, so none is cut off mid-request.
      const settled = await Promise.allSettled(Array.from({ length: Math.min(concurrency, services.length) }, worker));
      agent.destroy();
      const failure = settled.find((r) => r.status === 'rejected');
      if (failure) throw failure.reason;
      return created;
    },
    createEndpointSlice: (options) => discovery.createNamespacedEndpointSlice({ namespace, body: endpointSliceObject(options) }),
    async createPod(options) {
      await core.createNamespacedPod({ namespace, body: podObject(options) });
      return core.patchNamespacedPodStatus({ name: options.name, namespace, body: { status: podStatus(options) } }, mergePatch);
    },
  };
}

// client-node gives every request a new https.Agent, so each one pays for its own TCP and TLS
// handshake; in bulk that halves the rate. A middleware runs after the credentials are applied and
// may swap in one keep-alive agent with the same TLS material.
export async function connectionReuse(kc: KubeConfig, sockets: number): Promise<{ options: ConfigurationOptions; agent: Agent }> {
  const tls: RequestOptions = {};
  await kc.applyToHTTPSOptions(tls);
  const agent = new Agent({ keepAlive: true, maxSockets: sockets, ca: tls.ca, cert: tls.cert, key: tls.key });
  return {
    agent,
    options: {
      middleware: [
        {
          pre: (context) => {
            context.setAgent(agent);
            return new Observable(Promise.resolve(context));
          },
          post: (response) => new Observable(Promise.resolve(response)),
        },
      ],
      middlewareMergeStrategy: 'append',
    },
  };
}

function nodeObject(o: NodeOptions): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: o.name, labels: { 'kubernetes.io/hostname': o.name, 'kubernetes.io/os': 'linux', ...o.labels } },
    spec: o.podCIDRs?.length ? { podCIDR: o.podCIDRs[0], podCIDRs: o.podCIDRs } : {},
  };
}

function nodeStatus(o: NodeOptions) {
  const now = new Date().toISOString();
  return {
    addresses: [
      ...(o.internalIPs ?? []).map((address) => ({ type: 'InternalIP', address })),
      ...(o.externalIPs ?? []).map((address) => ({ type: 'ExternalIP', address })),
      { type: 'Hostname', address: o.name },
    ],
    conditions: [
      {
        type: 'Ready',
        status: o.ready === false ? 'False' : 'True',
        reason: o.ready === false ? 'KubeletNotReady' : 'KubeletReady',
        lastHeartbeatTime: now,
        lastTransitionTime: now,
      },
    ],
  };
}

function serviceObject(o: ServiceOptions): V1Service {
  const type = o.type ?? 'ClusterIP';
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: o.name, ...(o.labels ? { labels: o.labels } : {}), ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: {
      type,
      ports: o.ports ?? [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      ...(o.selector ? { selector: o.selector } : {}),
      ...(o.allocateLoadBalancerNodePorts !== undefined ? { allocateLoadBalancerNodePorts: o.allocateLoadBalancerNodePorts } : {}),
      ...o.spec,
    },
  };
}

function endpointSliceObject(o: EndpointSliceOptions): V1EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      ...(o.name ? { name: o.name } : { generateName: `${o.service}-` }),
      labels: {
        'kubernetes.io/service-name': o.service,
        // What the real controller writes, so consumers see production-shaped slices.
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
        ...o.labels,
      },
    },
    addressType: o.addressType ?? 'IPv4',
    endpoints: o.endpoints.map(({ ready, serving, terminating, ...endpoint }) => ({
      ...endpoint,
      conditions: {
        ready: ready ?? endpoint.conditions?.ready ?? true,
        ...(serving !== undefined ? { serving } : {}),
        ...(terminating !== undefined ? { terminating } : {}),
        ...endpoint.conditions,
      },
    })),
    ports: o.ports ?? [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

function podObject(o: PodOptions): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: o.name, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      nodeName: o.nodeName,
      ...(o.hostNetwork ? { hostNetwork: true } : {}),
      // Never pulled or run: there is no kubelet.
      containers: [{ name: 'main', image: 'registry.invalid/nodenet/none:0' }],
      terminationGracePeriodSeconds: 0,
    },
  };
}

function podStatus(o: PodOptions) {
  const now = new Date().toISOString();
  const running = (o.phase ?? 'Running') === 'Running';
  return {
    phase: o.phase ?? 'Running',
    podIP: o.podIPs[0],
    podIPs: o.podIPs.map((ip) => ({ ip })),
    ...(o.hostIPs?.length ? { hostIP: o.hostIPs[0], hostIPs: o.hostIPs.map((ip) => ({ ip })) } : {}),
    startTime: now,
    conditions: [{ type: 'Ready', status: running ? 'True' : 'False', lastTransitionTime: now }],
  };
}

/** A DNS-1123 label from a test name plus a random suffix. */
export function uniqueName(base: string): string {
  const slug = base
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50)
    .replace(/-+$/, '');
  return `${slug || 't'}-${Math.random().toString(36).slice(2, 8)}`;
}

// The namespace controller (part of the missing controller-manager) is what normally empties a
// deleted namespace and removes its finalizer; without it the namespace would stay Terminating
// with everything in it. Do its job: delete every namespaced collection, then finalize.
async function removeNamespace(kc: KubeConfig, core: CoreV1Api, namespace: string): Promise<void> {
  const collections = await namespacedCollections(kc);
  const results = await Promise.allSettled(
    collections.map((prefix) =>
      rawRequest(kc, 'DELETE', `${prefix.base}/namespaces/${namespace}/${prefix.resource}`, {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        // Pods on a node are otherwise only marked for deletion, waiting for a kubelet.
        gracePeriodSeconds: 0,
        propagationPolicy: 'Background',
      }).then((r) => {
        if (r.status >= 300 && r.status !== 404) throw new Error(`deletecollection ${prefix.resource}: HTTP ${r.status} ${r.body}`);
      }),
    ),
  );
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [describeError(r.reason)] : []));
  await ignoreNotFound(core.deleteNamespace({ name: namespace }));
  const live = await ignoreNotFound(core.readNamespace({ name: namespace }));
  if (live) await ignoreNotFound(core.replaceNamespaceFinalize({ name: namespace, body: { ...live, spec: { finalizers: [] } } }));
  if (failed.length) throw new Error(failed.join('; '));
}

interface Collection {
  base: string;
  resource: string;
}

// Aggregated discovery: every group's resources in two requests. Asked afresh each time so that
// CRDs a test installed are covered.
async function namespacedCollections(kc: KubeConfig): Promise<Collection[]> {
  const accept = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
  const collections: Collection[] = [];
  for (const root of ['/api', '/apis']) {
    const reply = await rawRequest(kc, 'GET', root, undefined, { Accept: accept });
    if (reply.status !== 200) throw new Error(`discovery ${root}: HTTP ${reply.status} ${reply.body}`);
    const list = JSON.parse(reply.body) as {
      items?: Array<{
        metadata?: { name?: string };
        versions?: Array<{ version: string; resources?: Array<{ resource: string; scope: string; verbs?: string[] }> }>;
      }>;
    };
    for (const group of list.items ?? []) {
      const preferred = group.versions?.[0];
      if (!preferred) continue;
      const base = group.metadata?.name ? `/apis/${group.metadata.name}/${preferred.version}` : `/api/${preferred.version}`;
      for (const r of preferred.resources ?? []) {
        if (r.scope === 'Namespaced' && r.verbs?.includes('deletecollection')) collections.push({ base, resource: r.resource });
      }
    }
  }
  return collections;
}

/**
 * One request with `kc`'s credentials, for what the generated clients do not cover (discovery
 * documents, deletecollection of any resource). Non-2xx statuses are returned, not thrown.
 */
export async function rawRequest(
  kc: KubeConfig,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('KubeConfig has no current cluster');
  const options: { method: string; headers: Record<string, string> } = {
    method,
    headers: { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
  };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, server), options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** What the apiserver said about a failed request: the Status object of a client-node ApiException. */
export interface ApiStatus {
  code: number;
  reason?: string;
  message?: string;
}

/** The Status of a failed client-node call, or undefined if `e` is not an API error. */
export function apiStatus(e: unknown): ApiStatus | undefined {
  if (!(e instanceof ApiException)) return undefined;
  const status: ApiStatus = { code: e.code };
  // client-node 1.4.0 hands over the response body as text; 401s come without one.
  if (typeof e.body === 'string') {
    try {
      const parsed = JSON.parse(e.body) as { reason?: string; message?: string };
      if (parsed.reason) status.reason = parsed.reason;
      if (parsed.message) status.message = parsed.message;
    } catch {
      status.message = e.body;
    }
  }
  return status;
}

/** Runs `call`, expecting it to fail with an API error; resolves with that error's Status. */
export async function expectApiError(call: Promise<unknown>): Promise<ApiStatus> {
  try {
    await call;
  } catch (e) {
    const status = apiStatus(e);
    if (status) return status;
    throw e;
  }
  throw new Error('the request succeeded; an API error was expected');
}

async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (e) {
    if (apiStatus(e)?.code === 404) return undefined;
    throw e;
  }
}

// ApiException's own message is the whole response with headers; keep what a reader needs.
function describeError(e: unknown): string {
  const status = apiStatus(e);
  if (status) return `HTTP ${status.code} ${status.reason ?? ''}: ${status.message ?? ''}`.trim();
  return e instanceof Error ? e.message : String(e);
}

function withContext(e: unknown, what: string): Error {
  return new Error(`${what}: ${describeError(e)}`, { cause: e });
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface EventStream<T> {
  /** The next event not yet taken; rejects after `timeoutMs` or if the watch ended first. */
  next(timeoutMs?: number): Promise<WatchEvent<T>>;
  /** Takes events until one matches. */
  until(match: (e: WatchEvent<T>) => boolean, timeoutMs?: number): Promise<WatchEvent<T>>;
  /** Events received and not yet taken. */
  pending(): WatchEvent<T>[];
  /**
   * How the watch ended: null when the server closed it, else the error (e.g. statusCode 403).
   * Rejects if it is still open after `timeoutMs`.
   */
  ended(timeoutMs?: number): Promise<unknown>;
  stop(): void;
}

/**
 * A client-node Watch on `path` whose events can be awaited in order; stopped in `t`'s teardown.
 * Give a resourceVersion (from a list) to see every change after it; without one the watch starts
 * at "now", which races with changes made right after this resolves.
 */
export async function watchEvents<T = unknown>(
  t: { teardown(fn: () => unknown): void },
  kc: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined> = {},
): Promise<EventStream<T>> {
  const queue: WatchEvent<T>[] = [];
  let wake: (() => void) | undefined;
  let finished = false;
  let endedWith: unknown;
  let resolveEnded!: (err: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (resolveEnded = resolve));
  const controller = await new Watch(kc).watch(
    path,
    query,
    (type, object) => {
      queue.push({ type: type as WatchEvent<T>['type'], object: object as T });
      wake?.();
    },
    (err) => {
      finished = true;
      endedWith = err;
      resolveEnded(err);
      wake?.();
    },
  );
  t.teardown(() => controller.abort());

  const next = async (timeoutMs = 10_000): Promise<WatchEvent<T>> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = queue.shift();
      if (event) return event;
      if (finished) {
        const how = endedWith ? describeError(endedWith) : 'closed by the server';
        throw new Error(`watch on ${path} ended (${how}) with no further event`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no watch event on ${path} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  };

  return {
    next,
    async until(match, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const event = await next(Math.max(1, deadline - Date.now()));
        if (match(event)) return event;
      }
    },
    pending: () => [...queue],
    ended: (timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`watch on ${path} still open after ${timeoutMs} ms`)), timeoutMs);
        void ended.then((err) => {
          clearTimeout(timer);
          resolve(err);
        });
      }),
    stop: () => controller.abort(),
  };
}

/** Retries `fn` until it resolves (e.g. while an RBAC change propagates to the authorizer). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() >= deadline) throw e;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
