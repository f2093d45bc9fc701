// The shaping controller's view of the cluster: the pods bound to this node (field selector, so a
// node's agent never holds the whole cluster's pods) and the namespaces, whose
// nodenet.io/shaping label opens netem.
import { CoreV1Api, type KubeConfig, type V1Namespace, type V1Pod } from '@kubernetes/client-node';

import { Informer, type InformerLog } from '../informer.js';

export interface ShapingInformers {
  pods: Informer<V1Pod>;
  namespaces: Informer<V1Namespace>;
}

export function shapingInformers(kubeConfig: KubeConfig, nodeName: string, log: InformerLog): ShapingInformers {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const pods = new Informer<V1Pod>({
    name: 'pods',
    kubeConfig,
    path: '/api/v1/pods',
    fieldSelector,
    list: () => core.listPodForAllNamespaces({ fieldSelector }),
    log,
  });
  const namespaces = new Informer<V1Namespace>({
    name: 'namespaces',
    kubeConfig,
    path: '/api/v1/namespaces',
    list: () => core.listNamespace(),
    log,
  });
  return { pods, namespaces };
}
