// The agent's HTTP endpoints for the kubelet and Prometheus:
//   /healthz  liveness: the process answers and its checks pass (e.g. the kernel worker threads)
//   /readyz   readiness: e.g. every informer synced and the last reconcile succeeded
//   /metrics  Prometheus text format
// A failing check answers 503 with its reason, so `curl` shows what is wrong.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

export interface Check {
  ok: boolean;
  /** One line a person can act on. */
  detail: string;
}

export interface HealthServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  registry: Registry;
  liveness(): Promise<Check>;
  readiness(): Check;
}

export interface HealthServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'text/plain', 'only GET and HEAD\n');
    const answer = async () => {
      switch (path) {
        case '/healthz':
        case '/readyz': {
          const check = path === '/healthz' ? await options.liveness() : options.readiness();
          return reply(check.ok ? 200 : 503, 'text/plain; charset=utf-8', `${check.ok ? 'ok' : 'failed'}: ${check.detail}\n`);
        }
        case '/metrics':
          return reply(200, options.registry.contentType, await options.registry.metrics());
        default:
          return reply(404, 'text/plain', 'not found: try /healthz, /readyz or /metrics\n');
      }
    };
    answer().catch((error: unknown) => reply(500, 'text/plain', `${error instanceof Error ? error.message : String(error)}\n`));
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    host: bound.address,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
