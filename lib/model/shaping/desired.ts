// One pod's desired shaping: its annotations, its namespace's opt-in label, the time, and what the
// caller last acted on, turned into a qdisc plan per direction plus what was refused and why.
//
// The rules, in the order they apply:
// 1. No shaping annotation: nothing, and no findings (the interface and expiry annotations alone
//    ask for nothing).
// 2. A host-network pod: refused (Warning). It has no network namespace of its own; shaping "its"
//    interface would shape the node.
// 3. A malformed nodenet.io/interface or nodenet.io/shaping-expires: Warning, and everything stays
//    as it was — without a valid interface or end, no new plan can be placed.
// 4. Expired (now ≥ expiresAt): nothing in either direction (Info), whatever else is written.
// 5. Per direction: a malformed or out-of-range netem or bandwidth value: Warning quoting the
//    token, and that direction keeps the previous plan, so the caller can leave its kernel state.
// 6. netem only in namespaces labelled nodenet.io/shaping=enabled (Warning otherwise, and the
//    netem annotations are not even evaluated); bandwidth caps need no opt-in. The gate also
//    applies to a previous plan kept by rule 5 or 3: closing it removes netem regardless.
// 7. netem and a cap for the same direction: netem at the root, the tbf under it.
//
// Determinism: the same inputs give the same output; nothing is read from a clock; inputs are
// never modified and no Date is shared between input and output.
import type { NetemOptions } from '../../kernel/qdiscs/index.js';
import type { Finding } from '../types.js';

import { bandwidthTbf, parseBandwidth } from './bandwidth.js';
import type { AnnotationError, Parsed } from './errors.js';
import { expiryTime, parseExpiry, type Expiry } from './expiry.js';
import { DEFAULT_INTERFACE, parseInterfaceName } from './interface-name.js';
import { parseNetem } from './netem-grammar.js';
import type { Direction, PodShaping, PreviousShaping, ShapingPlan, ShapingPodInput } from './types.js';

export const ANNOTATIONS = {
  egressNetem: 'nodenet.io/egress-netem',
  ingressNetem: 'nodenet.io/ingress-netem',
  egressBandwidth: 'kubernetes.io/egress-bandwidth',
  ingressBandwidth: 'kubernetes.io/ingress-bandwidth',
  interface: 'nodenet.io/interface',
  expires: 'nodenet.io/shaping-expires',
} as const;

export const SHAPING_LABEL = 'nodenet.io/shaping';
export const SHAPING_LABEL_VALUE = 'enabled';

const DIRECTIONS: readonly Direction[] = ['egress', 'ingress'];
const NETEM_OF: Record<Direction, string> = { egress: ANNOTATIONS.egressNetem, ingress: ANNOTATIONS.ingressNetem };
const BANDWIDTH_OF: Record<Direction, string> = { egress: ANNOTATIONS.egressBandwidth, ingress: ANNOTATIONS.ingressBandwidth };

function copyDate(d: Date | null | undefined): Date | null {
  return d ? new Date(d.getTime()) : null;
}

// A deep copy, so the output never aliases the caller's previous plan.
function copyPlan(plan: ShapingPlan | null | undefined): ShapingPlan | null {
  if (!plan) return null;
  if (plan.root.kind === 'netem') {
    return { root: { kind: 'netem', netem: { ...plan.root.netem } }, child: plan.child ? { kind: 'tbf', tbf: { ...plan.child.tbf } } : null };
  }
  return { root: { kind: 'tbf', tbf: { ...plan.root.tbf } }, child: null };
}

/** The plan with netem taken out: its tbf child, if it had one, becomes the root. */
function withoutNetem(plan: ShapingPlan | null): ShapingPlan | null {
  if (!plan || plan.root.kind !== 'netem') return plan;
  return plan.child ? { root: plan.child, child: null } : null;
}

/** Whether a plan holds netem (so the gate changes it). */
function hasNetem(plan: ShapingPlan | null | undefined): boolean {
  return plan?.root.kind === 'netem';
}

function nonBlank(text: string | undefined): text is string {
  return text !== undefined && text.trim() !== '';
}

export function desiredShaping(
  pod: ShapingPodInput,
  namespaceLabels: Readonly<Record<string, string>> | undefined,
  now: Date,
  previous?: PreviousShaping | null,
): PodShaping {
  const annotations = pod.metadata.annotations ?? {};
  const get = (name: string): string | undefined => (Object.hasOwn(annotations, name) ? annotations[name] : undefined);
  const ref = { namespace: pod.metadata.namespace, name: pod.metadata.name };
  const findings: Finding[] = [];
  const warn = (reason: string, message: string) => findings.push({ severity: 'warning', fix: 'shaping', reason, message, pod: { ...ref } });
  const note = (reason: string, message: string) => findings.push({ severity: 'info', fix: 'shaping', reason, message, pod: { ...ref } });

  // An empty netem annotation asks for nothing (tc would install a netem that does nothing); an
  // empty bandwidth annotation is an error, as it is to kubelet.
  const netemText: Record<Direction, string | undefined> = { egress: get(NETEM_OF.egress), ingress: get(NETEM_OF.ingress) };
  const bandwidthText: Record<Direction, string | undefined> = { egress: get(BANDWIDTH_OF.egress), ingress: get(BANDWIDTH_OF.ingress) };
  const asked = DIRECTIONS.flatMap((d) => [...(nonBlank(netemText[d]) ? [NETEM_OF[d]] : []), ...(bandwidthText[d] !== undefined ? [BANDWIDTH_OF[d]] : [])]);

  const interfaceText = get(ANNOTATIONS.interface);
  const iface = interfaceText === undefined ? ({ ok: true, value: DEFAULT_INTERFACE } as const) : parseInterfaceName(ANNOTATIONS.interface, interfaceText);
  const nothing = (interfaceName: string): PodShaping => ({
    pod: ref,
    interface: interfaceName,
    egress: null,
    ingress: null,
    appliedAt: null,
    expiresAt: null,
    kept: { egress: false, ingress: false },
    findings,
  });

  if (asked.length === 0) return nothing(iface.ok ? iface.value : DEFAULT_INTERFACE);
  if (pod.spec?.hostNetwork) {
    warn(
      'HostNetwork',
      `the pod uses the node's network namespace, so shaping it would shape the node: ${asked.join(', ')} not applied (only pods with their own network namespace are shaped)`,
    );
    return nothing(iface.ok ? iface.value : DEFAULT_INTERFACE);
  }

  const gateOpen = namespaceLabels !== undefined && Object.hasOwn(namespaceLabels, SHAPING_LABEL) && namespaceLabels[SHAPING_LABEL] === SHAPING_LABEL_VALUE;
  const expiresText = get(ANNOTATIONS.expires);
  const expiry: Parsed<Expiry> | null = expiresText === undefined ? null : parseExpiry(ANNOTATIONS.expires, expiresText);
  // Behind a closed gate the netem annotations are not evaluated at all: nothing of them applies.
  const parsed = {} as Record<Direction, { netem: Parsed<NetemOptions> | null; bandwidth: Parsed<number> | null }>;
  for (const d of DIRECTIONS) {
    parsed[d] = {
      netem: gateOpen && nonBlank(netemText[d]) ? parseNetem(NETEM_OF[d], netemText[d]) : null,
      bandwidth: bandwidthText[d] !== undefined ? parseBandwidth(BANDWIDTH_OF[d], bandwidthText[d]) : null,
    };
  }

  const reportAll = (errors: readonly AnnotationError[], consequence: string, reason: string) => {
    for (const e of errors) warn(reason, `${e.message}; ${consequence}`);
  };
  const errorsOf = (p: Parsed<unknown> | null): readonly AnnotationError[] => (p && !p.ok ? p.errors : []);
  const netemAsked = DIRECTIONS.filter((d) => nonBlank(netemText[d]));
  const reportGate = () => {
    if (netemAsked.length === 0 || gateOpen) return;
    const capped = DIRECTIONS.some((d) => bandwidthText[d] !== undefined);
    warn(
      'NetemNotEnabled',
      `${netemAsked.map((d) => NETEM_OF[d]).join(' and ')} not applied: netem is applied only in namespaces labelled ${SHAPING_LABEL}=${SHAPING_LABEL_VALUE}, ` +
        `and namespace ${JSON.stringify(ref.namespace)} is not${capped ? ' (bandwidth caps need no label and are applied)' : ''}`,
    );
  };
  /** Reports a direction's errors; true when it has any. */
  const reportDirection = (d: Direction): boolean => {
    const netemErrors = errorsOf(parsed[d].netem);
    const bandwidthErrors = errorsOf(parsed[d].bandwidth);
    reportAll(netemErrors, `${d} shaping stays as it was`, 'InvalidNetem');
    reportAll(bandwidthErrors, `${d} shaping stays as it was`, 'InvalidBandwidth');
    return netemErrors.length > 0 || bandwidthErrors.length > 0;
  };

  const prev = previous ?? null;
  // The gate applies to whatever is kept, too: a kept plan loses its netem once the gate is closed.
  const keep = (plan: ShapingPlan | null | undefined): ShapingPlan | null => (gateOpen ? copyPlan(plan) : copyPlan(withoutNetem(plan ?? null)));
  const keptAsIs = (d: Direction) => !prev || gateOpen || !hasNetem(prev[d]);

  // Without a valid interface or end, no new plan can be placed: everything stays as it was. The
  // other annotations are still checked, so one reconcile reports every mistake.
  if (!iface.ok || (expiry && !expiry.ok)) {
    reportAll(iface.ok ? [] : iface.errors, 'all shaping of this pod stays as it was', 'InvalidInterface');
    reportAll(errorsOf(expiry), 'all shaping of this pod stays as it was', 'InvalidExpiry');
    reportGate();
    for (const d of DIRECTIONS) reportDirection(d);
    return {
      pod: ref,
      interface: prev?.interface ?? (iface.ok ? iface.value : DEFAULT_INTERFACE),
      egress: keep(prev?.egress),
      ingress: keep(prev?.ingress),
      appliedAt: copyDate(prev?.appliedAt),
      expiresAt: copyDate(prev?.expiresAt),
      kept: { egress: keptAsIs('egress'), ingress: keptAsIs('ingress') },
      findings,
    };
  }

  // The clock of a duration starts when shaping was first applied: the previous appliedAt, or now.
  const appliedAtCandidate = prev?.appliedAt ? new Date(prev.appliedAt.getTime()) : new Date(now.getTime());
  const expiresAt = expiry ? expiryTime(expiry.value, appliedAtCandidate) : null;
  if (expiresAt && now.getTime() >= expiresAt.getTime()) {
    // Lifted whatever else is written, so nothing else is worth a warning.
    note('ShapingExpired', `${ANNOTATIONS.expires} ${JSON.stringify(expiresText)} ended at ${expiresAt.toISOString()}; no shaping is applied to this pod`);
    return { ...nothing(iface.value), appliedAt: copyDate(prev?.appliedAt), expiresAt };
  }

  reportGate();
  const plans: Record<Direction, ShapingPlan | null> = { egress: null, ingress: null };
  const kept: Record<Direction, boolean> = { egress: false, ingress: false };
  for (const d of DIRECTIONS) {
    if (reportDirection(d)) {
      plans[d] = keep(prev?.[d]);
      kept[d] = keptAsIs(d);
      continue;
    }
    const { netem, bandwidth } = parsed[d];
    const tbf = bandwidth?.ok ? { kind: 'tbf' as const, tbf: bandwidthTbf(bandwidth.value) } : null;
    if (netem?.ok) plans[d] = { root: { kind: 'netem', netem: netem.value }, child: tbf };
    else if (tbf) plans[d] = { root: tbf, child: null };
  }

  // One interface per result: a direction kept on the old interface holds the whole pod there
  // until the annotations are fixed, rather than splitting it across two interfaces.
  let interfaceName = iface.value;
  if (prev && prev.interface !== iface.value && (kept.egress || kept.ingress)) {
    note(
      'InterfaceChangeHeld',
      `${ANNOTATIONS.interface} changed from ${JSON.stringify(prev.interface)} to ${JSON.stringify(iface.value)}, but shaping stays on ${JSON.stringify(prev.interface)} until the malformed annotations are fixed`,
    );
    interfaceName = prev.interface;
    for (const d of DIRECTIONS) {
      plans[d] = keep(prev[d]);
      kept[d] = keptAsIs(d);
    }
  }

  const applies = plans.egress !== null || plans.ingress !== null;
  const appliedAt = applies ? appliedAtCandidate : kept.egress || kept.ingress ? copyDate(prev?.appliedAt) : null;
  return {
    pod: ref,
    interface: interfaceName,
    egress: plans.egress,
    ingress: plans.ingress,
    appliedAt,
    expiresAt: applies || kept.egress || kept.ingress ? expiresAt : null,
    kept,
    findings,
  };
}
