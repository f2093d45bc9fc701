// One short line for whatever the Kubernetes client failed with: an API status, a watch's HTTP
// status, or a connection error. client-node's own messages carry whole responses with headers.
import { ApiException } from '@kubernetes/client-node';

/** The HTTP status of a failed request or watch, if it got that far. */
export function httpStatus(error: unknown): number | undefined {
  if (error instanceof ApiException) return error.code;
  const e = error as { statusCode?: unknown; code?: unknown } | null;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function describeApiError(error: unknown): string {
  if (error instanceof ApiException) {
    let detail = '';
    if (typeof error.body === 'string') {
      try {
        const status = JSON.parse(error.body) as { reason?: string; message?: string };
        detail = [status.reason, status.message].filter(Boolean).join(': ');
      } catch {
        detail = error.body.slice(0, 200);
      }
    }
    return `HTTP ${error.code}${detail ? ` ${detail}` : ''}`;
  }
  const status = httpStatus(error);
  const message = error instanceof Error ? error.message : String(error);
  if (status !== undefined) return `HTTP ${status} ${message}`;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}
