// From the informers' objects (client-node's types) to the model's input: only the fields the
// model reads, so the model stays independent of the Kubernetes client.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import type { EndpointSliceInput, FixesConfig, NodeInput, ServiceInput } from '../../model/index.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

// The informers replace a Service's object when it changes and keep it otherwise, so converting by
// object identity hands the model the same ServiceInput every reconcile until the Service changes:
// the model's renderer reuses its rules by that identity. A WeakMap forgets replaced objects.
const converted = new WeakMap<V1Service, ServiceInput | null>();

/**
 * null for an object without namespace or name (never served by the API, but typed optional). The
 * same V1Service object always gives the same ServiceInput object: change neither in place.
 */
export function serviceInput(s: V1Service): ServiceInput | null {
  let input = converted.get(s);
  if (input === undefined) converted.set(s, (input = convertService(s)));
  return input;
}

function convertService(s: V1Service): ServiceInput | null {
  const { namespace, name, uid } = s.metadata ?? {};
  if (!namespace || !name) return null;
  const spec = s.spec ?? {};
  return {
    metadata: { namespace, name, ...(uid ? { uid } : {}) },
    spec: {
      ...(spec.type !== undefined ? { type: spec.type } : {}),
      ...(spec.clusterIP !== undefined ? { clusterIP: spec.clusterIP } : {}),
      ...(spec.clusterIPs !== undefined ? { clusterIPs: spec.clusterIPs } : {}),
      ...(spec.ipFamilies !== undefined ? { ipFamilies: spec.ipFamilies } : {}),
      ...(spec.externalIPs !== undefined ? { externalIPs: spec.externalIPs } : {}),
      ...(spec.loadBalancerSourceRanges !== undefined ? { loadBalancerSourceRanges: spec.loadBalancerSourceRanges } : {}),
      ...(spec.ports !== undefined
        ? { ports: spec.ports.map((p) => ({ port: p.port, ...(p.name !== undefined ? { name: p.name } : {}), ...(p.protocol !== undefined ? { protocol: p.protocol } : {}) })) }
        : {}),
    },
    ...(s.status?.loadBalancer?.ingress
      ? {
          status: {
            loadBalancer: {
              ingress: s.status.loadBalancer.ingress.map((i) => ({
                ...(i.ip !== undefined ? { ip: i.ip } : {}),
                ...(i.hostname !== undefined ? { hostname: i.hostname } : {}),
                ...(i.ipMode !== undefined ? { ipMode: i.ipMode } : {}),
              })),
            },
          },
        }
      : {}),
  };
}

export function nodeInput(n: V1Node | undefined): NodeInput | null {
  const name = n?.metadata?.name;
  if (!n || !name) return null;
  return {
    metadata: { name },
    spec: { ...(n.spec?.podCIDR !== undefined ? { podCIDR: n.spec.podCIDR } : {}), ...(n.spec?.podCIDRs !== undefined ? { podCIDRs: n.spec.podCIDRs } : {}) },
  };
}

/** The label selector that finds the DNS Services' EndpointSlices in any namespace. */
export function dnsSliceSelector(config: FixesConfig): string {
  const names = [...new Set(config.dnsServices.map((s) => s.name))].sort();
  return `${SERVICE_NAME_LABEL} in (${names.join(',')})`;
}

/** The EndpointSlices that belong to one of the configured DNS Services. */
export function dnsEndpointSlices(config: FixesConfig, slices: readonly V1EndpointSlice[]): EndpointSliceInput[] {
  const wanted = new Set(config.dnsServices.map((s) => `${s.namespace}/${s.name}`));
  const out: EndpointSliceInput[] = [];
  for (const slice of slices) {
    const { namespace, name, labels } = slice.metadata ?? {};
    const service = labels?.[SERVICE_NAME_LABEL];
    if (!namespace || !name || !service || !wanted.has(`${namespace}/${service}`)) continue;
    out.push({
      metadata: { namespace, name, ...(labels ? { labels } : {}) },
      addressType: slice.addressType,
      endpoints: (slice.endpoints ?? []).map((e) => ({
        addresses: e.addresses,
        ...(e.conditions
          ? { conditions: { ready: e.conditions.ready ?? null, serving: e.conditions.serving ?? null, terminating: e.conditions.terminating ?? null } }
          : {}),
      })),
      ports: slice.ports ? slice.ports.map((p) => ({ name: p.name ?? null, protocol: p.protocol ?? null, port: p.port ?? null })) : null,
    });
  }
  return out.sort((a, b) => (`${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}` ? -1 : 1));
}
