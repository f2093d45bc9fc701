// Parsing the agent's environment: every invalid value is reported with the variable's name, so
// that a typo in a DaemonSet stops the Pod with a message saying what to fix.

/** A configuration value that cannot be used; `variable` names it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
  }
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go-style duration ("60s", "1m30s", "500ms", "2h") in milliseconds; must be > 0. */
export function parseDuration(variable: string, text: string): number {
  const parts = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/.test(text) ? text.match(/\d+(?:\.\d+)?(?:ms|s|m|h)/g)! : null;
  if (!parts) throw new ConfigError(variable, `must be a duration such as 60s, 1m30s or 500ms, not ${JSON.stringify(text)}`);
  const ms = parts.reduce((sum, part) => {
    const [, value, unit] = part.match(/^(\d+(?:\.\d+)?)(ms|s|m|h)$/)!;
    return sum + Number(value) * UNITS[unit!]!;
  }, 0);
  if (!(ms >= 1)) throw new ConfigError(variable, `must be at least 1ms, not ${JSON.stringify(text)}`);
  return Math.round(ms);
}

/** "host:port" or "[v6]:port"; port 0 picks a free one. */
export function parseListenAddress(variable: string, text: string): { host: string; port: number } {
  const m = text.match(/^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(variable, `must be host:port (e.g. 0.0.0.0:9402 or [::]:9402), not ${JSON.stringify(text)}`);
  return { host: (m[1] ?? m[2])!, port };
}

/** One of `allowed`. */
export function parseChoice<T extends string>(variable: string, text: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(text)) throw new ConfigError(variable, `must be one of ${allowed.join(', ')}, not ${JSON.stringify(text)}`);
  return text as T;
}
