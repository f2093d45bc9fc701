// The informers the node fixes read: every Service, this Node (field selector on its name), and,
// when NOTRACK DNS is on, the DNS Services' EndpointSlices (label kubernetes.io/service-name).
import { CoreV1Api, DiscoveryV1Api, type KubeConfig, type V1EndpointSlice, type V1Node, type V1Service } from '@kubernetes/client-node';

import { Informer, type InformerLog } from '../informer.js';
import type { AgentConfig } from './config.js';
import { dnsSliceSelector } from './model-input.js';

export interface NodeFixesInformers {
  services: Informer<V1Service>;
  node: Informer<V1Node>;
  dnsSlices: Informer<V1EndpointSlice> | null;
}

export function nodeFixesInformers(kubeConfig: KubeConfig, config: AgentConfig, log: InformerLog): NodeFixesInformers {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const nodeSelector = `metadata.name=${config.nodeName}`;
  const services = new Informer<V1Service>({
    name: 'services',
    kubeConfig,
    path: '/api/v1/services',
    list: () => core.listServiceForAllNamespaces(),
    log,
  });
  const node = new Informer<V1Node>({
    name: 'node',
    kubeConfig,
    path: '/api/v1/nodes',
    fieldSelector: nodeSelector,
    list: () => core.listNode({ fieldSelector: nodeSelector }),
    log,
  });
  let dnsSlices: Informer<V1EndpointSlice> | null = null;
  if (config.fixes.notrackDns) {
    const labelSelector = dnsSliceSelector(config.fixes);
    dnsSlices = new Informer<V1EndpointSlice>({
      name: 'dns-endpointslices',
      kubeConfig,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector,
      list: () => discovery.listEndpointSliceForAllNamespaces({ labelSelector }),
      log,
    });
  }
  return { services, node, dnsSlices };
}
