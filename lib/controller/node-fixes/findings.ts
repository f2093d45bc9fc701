// What the model refused or noticed, told three ways: a log line when a finding appears (and when
// it goes), a gauge per fix and reason, and a rate-limited Warning Event on the Service a warning
// concerns. Logging only changes keeps a 60 s resync from repeating the same lines forever.
import type { Logger } from 'pino';

import type { FixesConfig, Finding, ServiceInput } from '../../model/index.js';
import type { EventRecorder } from '../events.js';
import type { NodeFixesMetrics } from './metrics.js';

type ServiceRef = { namespace: string; name: string };

export class FindingsReporter {
  private active = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly metrics: NodeFixesMetrics,
    private readonly events: EventRecorder | null,
    private readonly nodeName: string,
  ) {}

  report(findings: readonly Finding[], services: readonly ServiceInput[], config: FixesConfig): void {
    const now = new Set<string>();
    this.metrics.findings.reset();
    const counts = new Map<string, number>();
    let uids: Map<string, string | undefined> | null = null;
    const uidOf = (ref: ServiceRef) => {
      // Built once, on the first Warning: a lookup per Warning would be quadratic in the Services.
      uids ??= new Map([...services].reverse().map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s.metadata.uid]));
      return uids.get(`${ref.namespace}/${ref.name}`);
    };
    for (const f of findings) {
      const key = `${f.fix}|${f.reason}|${f.service ? `${f.service.namespace}/${f.service.name}` : ''}|${f.message}`;
      now.add(key);
      const labels = `${f.fix}|${f.reason}|${f.severity}`;
      counts.set(labels, (counts.get(labels) ?? 0) + 1);
      if (!this.active.has(key)) {
        const fields = { fix: f.fix, reason: f.reason, ...(f.service ? { service: `${f.service.namespace}/${f.service.name}` } : {}) };
        if (f.severity === 'warning') this.log.warn(fields, f.message);
        else this.log.info(fields, f.message);
      }
      if (f.severity === 'warning') for (const s of this.concerned(f, services, config)) this.warn(s, f, uidOf);
    }
    for (const key of this.active) {
      if (!now.has(key)) {
        const [fix, reason, service] = key.split('|');
        this.log.info({ fix, reason, ...(service ? { service } : {}) }, `resolved: ${key.split('|').slice(3).join('|')}`);
      }
    }
    for (const [labels, n] of counts) {
      const [fix, reason, severity] = labels.split('|') as [string, string, string];
      this.metrics.findings.set({ fix, reason, severity }, n);
    }
    this.active = now;
  }

  // A refusal of the whole External-IP fix (kube-proxy not in IPVS mode) concerns every Service
  // whose external addresses go unredirected on this node: their owners are the ones who see
  // traffic fail, so each gets the Warning on its own `kubectl describe`.
  private concerned(f: Finding, services: readonly ServiceInput[], config: FixesConfig): ServiceRef[] {
    if (f.service) return [f.service];
    if (f.fix !== 'external-cluster' || f.reason !== 'NotIPVSMode') return [];
    return services
      .filter((s) => (s.status?.loadBalancer?.ingress ?? []).some((i) => i.ip && i.ipMode !== 'Proxy') || (config.externalIPs && (s.spec.externalIPs ?? []).length > 0))
      .map((s) => s.metadata);
  }

  private warn(service: ServiceRef, f: Finding, uidOf: (service: ServiceRef) => string | undefined): void {
    if (!this.events) return;
    const uid = uidOf(service);
    this.events.warning(
      { kind: 'Service', apiVersion: 'v1', namespace: service.namespace, name: service.name, ...(uid ? { uid } : {}) },
      f.reason,
      `nodenet on node ${this.nodeName}: ${f.message}`,
    );
  }
}
