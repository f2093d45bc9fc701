// The shaping controller's settings, read with the agent's other variables.
import { ConfigError } from '../settings.js';

export interface ShapingConfig {
  /** SHAPING (default true): shape pods by their annotations. */
  enabled: boolean;
  /** SHAPING_NETNS_DIRS (default /var/run/netns): where the container runtime keeps pod namespace files. */
  netnsDirs: string[];
  /**
   * SHAPING_PROC_ROOT (default /proc): the host's procfs, for finding a pod's namespace through its
   * processes when its address does not lead to it; "none" turns that fallback off.
   */
  procRoot: string | null;
  /**
   * SHAPING_STATE_FILE (default /run/nodenet/shaping.json): when each pod's shaping was first
   * applied, so a duration-form expiry keeps counting across agent restarts. On tmpfs on purpose:
   * a node reboot ends every pod's sandbox, and with it what the times refer to.
   */
  stateFile: string | null;
}

function setting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function absolute(variable: string, text: string): string {
  if (!text.startsWith('/')) throw new ConfigError(variable, `must be an absolute path, not ${JSON.stringify(text)}`);
  return text;
}

/** The shaping settings; throws ConfigError naming the first bad variable. */
export function parseShapingConfig(env: NodeJS.ProcessEnv): ShapingConfig {
  const enabledText = (setting(env, 'SHAPING') ?? 'true').toLowerCase();
  if (!['true', 'false'].includes(enabledText)) throw new ConfigError('SHAPING', `must be true or false, not ${JSON.stringify(env['SHAPING'])}`);
  const dirs = (setting(env, 'SHAPING_NETNS_DIRS') ?? '/var/run/netns').split(',').map((d) => d.trim()).filter(Boolean);
  const procText = setting(env, 'SHAPING_PROC_ROOT') ?? '/proc';
  const stateText = setting(env, 'SHAPING_STATE_FILE') ?? '/run/nodenet/shaping.json';
  return {
    enabled: enabledText === 'true',
    netnsDirs: dirs.map((d) => absolute('SHAPING_NETNS_DIRS', d)),
    procRoot: procText === 'none' ? null : absolute('SHAPING_PROC_ROOT', procText),
    stateFile: stateText === 'none' ? null : absolute('SHAPING_STATE_FILE', stateText),
  };
}

export const DEFAULT_SHAPING_CONFIG: ShapingConfig = parseShapingConfig({});
