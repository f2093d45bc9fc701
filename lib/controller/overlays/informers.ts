// The overlay controller's view of the cluster: every Link (cluster-scoped, few) and every Node
// (their labels decide which Links apply where, their InternalIPs make the VXLAN meshes). It never
// watches NodeNetworkStatus objects: each agent writes its own and reads none.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type V1Node } from '@kubernetes/client-node';

import type { LinkResource } from '../../model/overlays/types.js';
import { Informer, type InformerLog } from '../informer.js';

export const GROUP = 'nodenet.io';
export const VERSION = 'v1alpha1';

export interface OverlayInformers {
  links: Informer<LinkResource>;
  nodes: Informer<V1Node>;
}

export function overlayInformers(kubeConfig: KubeConfig, log: InformerLog): OverlayInformers {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const links = new Informer<LinkResource>({
    name: 'links',
    kubeConfig,
    path: `/apis/${GROUP}/${VERSION}/links`,
    list: async () => (await custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: 'links' })) as KubernetesListObject<LinkResource>,
    log,
  });
  const nodes = new Informer<V1Node>({
    name: 'nodes',
    kubeConfig,
    path: '/api/v1/nodes',
    list: () => core.listNode(),
    log,
  });
  return { links, nodes };
}
