// The node-fixes agent's configuration: network-node-manager's variables (parsed by the model's
// parseFixesConfig, so the two agents agree on every name and default) plus the agent's own.
// Every problem is reported, each naming its variable; the agent refuses to start on any.
import type { KubeConfig } from '@kubernetes/client-node';

import { BACKEND_SETTINGS, type BackendSetting } from '../../kernel/netfilter/detect.js';
import { parseFixesConfig, type FixesConfig, type ProxyMode } from '../../model/index.js';
import { loadKubeConfig } from '../kubeconfig.js';
import { DEFAULT_NODE_LOCK } from '../node-lock.js';
import { ConfigError, parseChoice, parseDuration, parseListenAddress } from '../settings.js';
import { DEFAULT_SHAPING_CONFIG, parseShapingConfig, type ShapingConfig } from '../shaping/config.js';

export type ProxyModeSetting = 'auto' | ProxyMode;

export interface AgentConfig {
  fixes: FixesConfig;
  /** PROXY_MODE (default auto: IPVS when the node has a kube-ipvs0 link). */
  proxyMode: ProxyModeSetting;
  /** RESYNC_PERIOD (default 60s). */
  resyncPeriodMs: number;
  /** METRICS_ADDRESS (default 0.0.0.0:9402): /healthz, /readyz, /metrics. */
  listen: { host: string; port: number };
  /** NODE_NAME (required): this Node, for its pod CIDRs and as the Events' source. */
  nodeName: string;
  /** NODENET_LOCK_FILE (default /run/nodenet.lock). */
  lockFile: string;
  /** BACKEND (default auto: detected as kube-proxy's iptables-wrappers do). */
  backend: BackendSetting;
  /** SHAPING and SHAPING_*: traffic shaping by pod annotation. */
  shaping: ShapingConfig;
  /** OVERLAYS (default false; needs deploy/crds): bridges and VXLANs from Link resources. */
  overlays: boolean;
}

export const PROXY_MODES: readonly ProxyModeSetting[] = ['auto', 'ipvs', 'iptables', 'nftables'];

// A Node's name is a DNS-1123 subdomain.
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

/** The configuration, or every problem found (one line each, starting with the variable). */
export function agentConfigFromEnv(env: NodeJS.ProcessEnv): { config: AgentConfig } | { errors: string[] } {
  const errors: string[] = [];
  const attempt = <T>(parse: () => T, fallback: T): T => {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(error.message);
      return fallback;
    }
  };
  const fixes = parseFixesConfig(env);
  if ('errors' in fixes) errors.push(...fixes.errors);

  const proxyMode = attempt(() => parseChoice('PROXY_MODE', setting(env, 'PROXY_MODE') ?? 'auto', PROXY_MODES), 'auto');
  const backend = attempt(() => parseChoice('BACKEND', setting(env, 'BACKEND') ?? 'auto', BACKEND_SETTINGS), 'auto');
  const resyncPeriodMs = attempt(() => parseDuration('RESYNC_PERIOD', setting(env, 'RESYNC_PERIOD') ?? '60s'), 60_000);
  const listen = attempt(() => parseListenAddress('METRICS_ADDRESS', setting(env, 'METRICS_ADDRESS') ?? '0.0.0.0:9402'), { host: '', port: 0 });
  const nodeName = setting(env, 'NODE_NAME') ?? '';
  if (!nodeName) errors.push('NODE_NAME is required: the name of the Node this agent runs on (a DaemonSet sets it from spec.nodeName)');
  else if (nodeName.length > 253 || !NODE_NAME.test(nodeName)) errors.push(`NODE_NAME must be a Node name (a lower-case DNS subdomain), not ${JSON.stringify(nodeName)}`);
  const shaping = attempt(() => parseShapingConfig(env), DEFAULT_SHAPING_CONFIG);
  const overlays = attempt(() => parseChoice('OVERLAYS', (setting(env, 'OVERLAYS') ?? 'false').toLowerCase(), ['true', 'false'] as const), 'false') === 'true';
  const lockFile = setting(env, 'NODENET_LOCK_FILE') ?? DEFAULT_NODE_LOCK;
  if (!lockFile.startsWith('/')) errors.push(`NODENET_LOCK_FILE must be an absolute path, not ${JSON.stringify(lockFile)}`);

  if (errors.length || 'errors' in fixes) return { errors };
  return { config: { fixes: fixes.config, proxyMode, resyncPeriodMs, listen, nodeName, lockFile, backend, shaping, overlays } };
}

/** The configuration and the API credentials, or every problem with either. */
export function agentSetupFromEnv(env: NodeJS.ProcessEnv): { config: AgentConfig; kubeConfig: KubeConfig } | { errors: string[] } {
  const parsed = agentConfigFromEnv(env);
  const errors = 'errors' in parsed ? [...parsed.errors] : [];
  let kubeConfig: KubeConfig | null = null;
  try {
    kubeConfig = loadKubeConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    errors.push(error.message);
  }
  if ('errors' in parsed || !kubeConfig) return { errors };
  return { config: parsed.config, kubeConfig };
}
