// Where the agent's API credentials come from: KUBECONFIG when set (tests, running by hand), else
// the Pod's ServiceAccount (in-cluster).
import { KubeConfig } from '@kubernetes/client-node';

import { ConfigError } from './settings.js';

export function loadKubeConfig(env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  if (env.KUBECONFIG) {
    try {
      kc.loadFromFile(env.KUBECONFIG);
    } catch (error) {
      throw new ConfigError('KUBECONFIG', `cannot load ${env.KUBECONFIG}: ${(error as Error).message}`);
    }
    if (!kc.getCurrentCluster()) throw new ConfigError('KUBECONFIG', `${env.KUBECONFIG} names no current cluster`);
    return kc;
  }
  if (!env.KUBERNETES_SERVICE_HOST) {
    throw new ConfigError('KUBECONFIG', 'is not set and this is not a Pod (no KUBERNETES_SERVICE_HOST): set it to a kubeconfig file');
  }
  kc.loadFromCluster();
  return kc;
}
