// One pod's desired shaping: plans per direction, the namespace gate for netem, host-network
// refusal, expiry, and the rule that a malformed value keeps the previous plan of its direction.
import t from 'tap';

import { encodeNetem } from '../../lib/kernel/qdiscs/netem.js';
import { encodeTbf } from '../../lib/kernel/qdiscs/tbf.js';
import type { Finding } from '../../lib/model/index.js';
import { desiredShaping, type PodShaping, type PreviousShaping, type ShapingPlan, type ShapingPodInput } from '../../lib/model/shaping/index.js';

const NS = 'team-a';
const POD = { namespace: NS, name: 'web-0' };
const ENABLED = { 'nodenet.io/shaping': 'enabled' };
const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const QFORM = 'bits per second as a Kubernetes quantity, like 500k, 10M, 1G or 100Mi (k, M, G, T, P, E are powers of 1000; Ki, Mi, Gi, Ti, Pi, Ei powers of 1024)';

const pod = (annotations?: Record<string, string>, hostNetwork?: boolean): ShapingPodInput => ({
  metadata: { ...POD, ...(annotations ? { annotations } : {}) },
  ...(hostNetwork === undefined ? {} : { spec: { hostNetwork } }),
});

const TBF_10M = { rate: 10_000_000, burst: 65553, limit: 96803 };
const TBF_20M = { rate: 20_000_000, burst: 65553, limit: 128053 };
const TBF_1G = { rate: 1_000_000_000, burst: 1_250_000, limit: 4_375_000 };
const tbf = (o: typeof TBF_10M): ShapingPlan => ({ root: { kind: 'tbf', tbf: o }, child: null });
const netem = (o: object, child: typeof TBF_10M | null = null): ShapingPlan => ({ root: { kind: 'netem', netem: o }, child: child ? { kind: 'tbf', tbf: child } : null });

// Dates as ISO strings, so that one strictSame compares a whole result.
function plain(r: PodShaping) {
  return { ...r, appliedAt: r.appliedAt?.toISOString() ?? null, expiresAt: r.expiresAt?.toISOString() ?? null };
}

function expected(over: Partial<Omit<ReturnType<typeof plain>, 'pod'>>) {
  return { pod: POD, interface: 'eth0', egress: null, ingress: null, appliedAt: null, expiresAt: null, kept: { egress: false, ingress: false }, findings: [] as Finding[], ...over };
}

const finding = (severity: 'warning' | 'info', reason: string, message: string): Finding => ({ severity, fix: 'shaping', reason, message, pod: POD });

t.test('no shaping annotation: nothing, and no findings', async (t) => {
  t.strictSame(plain(desiredShaping(pod(), ENABLED, T0)), expected({}));
  t.strictSame(plain(desiredShaping(pod({}), undefined, T0)), expected({}));
  t.strictSame(plain(desiredShaping(pod({ 'nodenet.io/interface': 'net1', 'nodenet.io/shaping-expires': '1h' }), ENABLED, T0)), expected({ interface: 'net1' }));
  t.strictSame(plain(desiredShaping(pod({ 'nodenet.io/interface': 'bad/name', 'nodenet.io/shaping-expires': 'never' }), ENABLED, T0)), expected({}), 'nothing asked, nothing to complain about');
  t.strictSame(plain(desiredShaping(pod({ 'nodenet.io/egress-netem': '  \t', 'nodenet.io/ingress-netem': '' }), undefined, T0)), expected({}), 'a blank netem annotation asks for nothing');
  t.strictSame(plain(desiredShaping(pod({ 'kubernetes.io/egress-bandwidth-x': '10M', 'nodenet.io/egress-netem-x': 'delay 1ms' }), ENABLED, T0)), expected({}), 'other annotations are not read');
});

t.test('plans per direction', async (t) => {
  const cases: Array<[string, Record<string, string>, Record<string, string> | undefined, { egress: ShapingPlan | null; ingress: ShapingPlan | null }]> = [
    ['egress netem', { 'nodenet.io/egress-netem': 'delay 100ms 10ms' }, ENABLED, { egress: netem({ delay: 100_000_000, jitter: 10_000_000 }), ingress: null }],
    ['ingress netem', { 'nodenet.io/ingress-netem': 'loss 1%' }, ENABLED, { egress: null, ingress: netem({ loss: 1 }) }],
    ['egress cap without the label', { 'kubernetes.io/egress-bandwidth': '10M' }, undefined, { egress: tbf(TBF_10M), ingress: null }],
    ['ingress cap without the label', { 'kubernetes.io/ingress-bandwidth': '1G' }, {}, { egress: null, ingress: tbf(TBF_1G) }],
    ['netem and a cap in one direction: tbf under netem', { 'nodenet.io/egress-netem': 'delay 100ms', 'kubernetes.io/egress-bandwidth': '10M' }, ENABLED, { egress: netem({ delay: 100_000_000 }, TBF_10M), ingress: null }],
    [
      'everything',
      { 'nodenet.io/egress-netem': 'duplicate 1%', 'kubernetes.io/egress-bandwidth': '20M', 'nodenet.io/ingress-netem': 'corrupt 0.1%', 'kubernetes.io/ingress-bandwidth': '10M' },
      ENABLED,
      { egress: netem({ duplicate: 1 }, TBF_20M), ingress: netem({ corrupt: 0.1 }, TBF_10M) },
    ],
  ];
  for (const [name, annotations, labels, plans] of cases) {
    const r = desiredShaping(pod(annotations), labels, T0);
    t.strictSame(plain(r), expected({ ...plans, appliedAt: T0.toISOString() }), name);
    for (const plan of [r.egress, r.ingress]) {
      if (!plan) continue;
      const root = plan.root;
      if (root.kind === 'netem') t.doesNotThrow(() => encodeNetem(root.netem), `${name}: netem encodes`);
      else t.doesNotThrow(() => encodeTbf(root.tbf), `${name}: tbf encodes`);
      const child = plan.child;
      if (child) t.doesNotThrow(() => encodeTbf(child.tbf), `${name}: child tbf encodes`);
    }
  }
});

t.test('netem needs the namespace label; bandwidth caps do not', async (t) => {
  const gateMessage = (which: string, capped: boolean) =>
    `${which} not applied: netem is applied only in namespaces labelled nodenet.io/shaping=enabled, and namespace "team-a" is not${capped ? ' (bandwidth caps need no label and are applied)' : ''}`;
  const closed: Array<Record<string, string> | undefined> = [undefined, {}, { 'nodenet.io/shaping': 'Enabled' }, { 'nodenet.io/shaping': 'true' }, { 'nodenet.io/shaping': '' }, { shaping: 'enabled' }];
  for (const labels of closed) {
    const name = JSON.stringify(labels ?? null);
    t.strictSame(
      plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 100ms' }), labels, T0)),
      expected({ findings: [finding('warning', 'NetemNotEnabled', gateMessage('nodenet.io/egress-netem', false))] }),
      `${name}: no netem`,
    );
  }
  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 100ms', 'nodenet.io/ingress-netem': 'loss 5%', 'kubernetes.io/egress-bandwidth': '10M' }), { other: 'x' }, T0)),
    expected({ egress: tbf(TBF_10M), appliedAt: T0.toISOString(), findings: [finding('warning', 'NetemNotEnabled', gateMessage('nodenet.io/egress-netem and nodenet.io/ingress-netem', true))] }),
    'the cap stays, netem goes',
  );
  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'loss 1.5x' }), undefined, T0)),
    expected({ findings: [finding('warning', 'NetemNotEnabled', gateMessage('nodenet.io/egress-netem', false))] }),
    'netem is not even parsed behind a closed gate',
  );
});

t.test('host-network pods are refused', async (t) => {
  const previous: PreviousShaping = { interface: 'eth0', egress: tbf(TBF_10M), ingress: null, appliedAt: T0, expiresAt: null };
  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 1ms', 'kubernetes.io/ingress-bandwidth': '10M', 'nodenet.io/interface': 'net1' }, true), ENABLED, T0, previous)),
    expected({
      interface: 'net1',
      findings: [
        finding(
          'warning',
          'HostNetwork',
          "the pod uses the node's network namespace, so shaping it would shape the node: nodenet.io/egress-netem, kubernetes.io/ingress-bandwidth not applied (only pods with their own network namespace are shaped)",
        ),
      ],
    }),
  );
  t.strictSame(plain(desiredShaping(pod({ 'nodenet.io/interface': 'net1' }, true), ENABLED, T0)), expected({ interface: 'net1' }), 'nothing asked: no finding');
  t.strictSame(plain(desiredShaping(pod({ 'kubernetes.io/ingress-bandwidth': '10M' }, false), ENABLED, T0)), expected({ ingress: tbf(TBF_10M), appliedAt: T0.toISOString() }), 'hostNetwork: false is a normal pod');
});

t.test('a malformed value keeps the previous plan of its direction, and only that one', async (t) => {
  const good = { 'nodenet.io/egress-netem': 'delay 100ms', 'kubernetes.io/ingress-bandwidth': '10M' };
  const r1 = desiredShaping(pod(good), ENABLED, T0);
  t.strictSame(plain(r1), expected({ egress: netem({ delay: 100_000_000 }), ingress: tbf(TBF_10M), appliedAt: T0.toISOString() }));

  const r2 = desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 100ms loss 1.5x', 'kubernetes.io/ingress-bandwidth': '20M' }), ENABLED, at(60_000), r1);
  t.strictSame(
    plain(r2),
    expected({
      egress: netem({ delay: 100_000_000 }),
      ingress: tbf(TBF_20M),
      appliedAt: T0.toISOString(),
      kept: { egress: true, ingress: false },
      findings: [finding('warning', 'InvalidNetem', 'nodenet.io/egress-netem: loss "1.5x" at column 18: expected a percentage like 1% or 0.5%; egress shaping stays as it was')],
    }),
    'egress kept, ingress follows its edit',
  );
  t.not(r2.egress, r1.egress, 'a copy, not the caller’s object');
  t.not(r2.appliedAt, r1.appliedAt, 'a new Date');

  const r3 = desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 100ms loss 1%', 'kubernetes.io/ingress-bandwidth': '20M' }), ENABLED, at(120_000), r2);
  t.strictSame(plain(r3), expected({ egress: netem({ delay: 100_000_000, loss: 1 }), ingress: tbf(TBF_20M), appliedAt: T0.toISOString() }), 'fixed: the new plan');

  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 100ms', 'kubernetes.io/egress-bandwidth': '10X' }), ENABLED, at(1), r1)),
    expected({
      egress: netem({ delay: 100_000_000 }),
      appliedAt: T0.toISOString(),
      kept: { egress: true, ingress: false },
      findings: [finding('warning', 'InvalidBandwidth', `kubernetes.io/egress-bandwidth: "10X" is not a quantity: expected ${QFORM}; egress shaping stays as it was`)],
    }),
    'a bad cap keeps netem and cap together as they were; the removed ingress cap goes',
  );
  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay x', 'kubernetes.io/egress-bandwidth': '100' }), ENABLED, at(1), r1)).findings.map((f) => [f.reason, f.message]),
    [
      ['InvalidNetem', 'nodenet.io/egress-netem: delay "x" at column 7: expected a time like 100ms, 1.5s or 250us (units s, sec, ms, msec, us, usec, ns, nsec); egress shaping stays as it was'],
      ['InvalidBandwidth', `kubernetes.io/egress-bandwidth: "100" is below 1k: expected ${QFORM}, from 1k (1000 bits/s) to 1P; egress shaping stays as it was`],
    ],
    'every error of the direction, each with its own reason',
  );
  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 100ms loss 1.5x', 'kubernetes.io/ingress-bandwidth': '20M' }), ENABLED, T0)),
    expected({
      ingress: tbf(TBF_20M),
      appliedAt: T0.toISOString(),
      kept: { egress: true, ingress: false },
      findings: [finding('warning', 'InvalidNetem', 'nodenet.io/egress-netem: loss "1.5x" at column 18: expected a percentage like 1% or 0.5%; egress shaping stays as it was')],
    }),
    'no previous plan known: nothing planned, and kept says to leave the kernel alone',
  );
});

t.test('a closed gate takes netem out of a kept plan too', async (t) => {
  const previous: PreviousShaping = { interface: 'eth0', egress: netem({ delay: 5_000_000 }, TBF_10M), ingress: netem({ loss: 2 }), appliedAt: T0, expiresAt: null };
  const gate = 'nodenet.io/egress-netem and nodenet.io/ingress-netem not applied: netem is applied only in namespaces labelled nodenet.io/shaping=enabled, and namespace "team-a" is not (bandwidth caps need no label and are applied)';
  t.strictSame(
    plain(
      desiredShaping(
        pod({ 'nodenet.io/egress-netem': 'delay 5ms', 'kubernetes.io/egress-bandwidth': 'x', 'nodenet.io/ingress-netem': 'loss 2%', 'kubernetes.io/ingress-bandwidth': 'y' }),
        {},
        at(1),
        previous,
      ),
    ),
    expected({
      egress: tbf(TBF_10M),
      appliedAt: T0.toISOString(),
      findings: [
        finding('warning', 'NetemNotEnabled', gate),
        finding('warning', 'InvalidBandwidth', `kubernetes.io/egress-bandwidth: "x" is not a quantity: expected ${QFORM}; egress shaping stays as it was`),
        finding('warning', 'InvalidBandwidth', `kubernetes.io/ingress-bandwidth: "y" is not a quantity: expected ${QFORM}; ingress shaping stays as it was`),
      ],
    }),
  );
});

t.test('a malformed interface or expiry keeps everything as it was', async (t) => {
  const previous: PreviousShaping = { interface: 'net1', egress: netem({ delay: 1_000_000 }), ingress: tbf(TBF_10M), appliedAt: T0, expiresAt: at(3_600_000) };
  const annotations = { 'nodenet.io/egress-netem': 'delay 2ms', 'kubernetes.io/ingress-bandwidth': '20M' };
  const IFORM = 'a Linux interface name like eth0 or net1: 1 to 15 bytes, not "." or "..", without "/", ":", whitespace or NUL';
  const EFORM =
    'an RFC 3339 time like 2030-01-02T15:04:05Z or 2030-01-02T17:04:05+02:00, or a duration from when the shaping was applied like 90s, 1h30m or 500ms (units ns, us, ms, s, m, h)';
  const held = {
    interface: 'net1',
    egress: netem({ delay: 1_000_000 }),
    ingress: tbf(TBF_10M),
    appliedAt: T0.toISOString(),
    expiresAt: at(3_600_000).toISOString(),
    kept: { egress: true, ingress: true },
  };
  t.strictSame(
    plain(desiredShaping(pod({ ...annotations, 'nodenet.io/interface': 'net1:0' }), ENABLED, at(1), previous)),
    expected({ ...held, findings: [finding('warning', 'InvalidInterface', `nodenet.io/interface: "net1:0" contains ":": expected ${IFORM}; all shaping of this pod stays as it was`)] }),
  );
  t.strictSame(
    plain(desiredShaping(pod({ ...annotations, 'nodenet.io/shaping-expires': 'tomorrow' }), ENABLED, at(1), previous)),
    expected({ ...held, findings: [finding('warning', 'InvalidExpiry', `nodenet.io/shaping-expires: "tomorrow" is neither a time nor a duration: expected ${EFORM}; all shaping of this pod stays as it was`)] }),
  );
  t.strictSame(
    plain(desiredShaping(pod({ ...annotations, 'nodenet.io/shaping-expires': '-5m', 'nodenet.io/interface': '' }), ENABLED, at(1))),
    expected({
      kept: { egress: true, ingress: true },
      findings: [
        finding('warning', 'InvalidInterface', `nodenet.io/interface: "" is empty: expected ${IFORM}; all shaping of this pod stays as it was`),
        finding('warning', 'InvalidExpiry', `nodenet.io/shaping-expires: "-5m" is a negative duration: expected ${EFORM}; all shaping of this pod stays as it was`),
      ],
    }),
    'no previous: nothing planned, everything kept, both errors reported',
  );
  t.strictSame(
    plain(desiredShaping(pod({ ...annotations, 'nodenet.io/interface': 'net1:0', 'kubernetes.io/ingress-bandwidth': '2P' }), {}, at(1), previous)),
    expected({
      ...held,
      egress: null,
      kept: { egress: false, ingress: true },
      findings: [
        finding('warning', 'InvalidInterface', `nodenet.io/interface: "net1:0" contains ":": expected ${IFORM}; all shaping of this pod stays as it was`),
        finding(
          'warning',
          'NetemNotEnabled',
          'nodenet.io/egress-netem not applied: netem is applied only in namespaces labelled nodenet.io/shaping=enabled, and namespace "team-a" is not (bandwidth caps need no label and are applied)',
        ),
        finding('warning', 'InvalidBandwidth', `kubernetes.io/ingress-bandwidth: "2P" is above 1P: expected ${QFORM}, from 1k to 1P (10^15 bits/s); ingress shaping stays as it was`),
      ],
    }),
    'every mistake reported in one pass, and the gate still applies to what is kept',
  );
});

t.test('interface changes', async (t) => {
  const r1 = desiredShaping(pod({ 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '10M' }), ENABLED, T0);
  t.strictSame(
    plain(desiredShaping(pod({ 'kubernetes.io/egress-bandwidth': '20M', 'kubernetes.io/ingress-bandwidth': '10M', 'nodenet.io/interface': 'net1' }), ENABLED, at(1), r1)),
    expected({ interface: 'net1', egress: tbf(TBF_20M), ingress: tbf(TBF_10M), appliedAt: T0.toISOString() }),
    'a valid change moves the shaping',
  );
  t.strictSame(
    plain(desiredShaping(pod({ 'kubernetes.io/egress-bandwidth': '20M', 'kubernetes.io/ingress-bandwidth': '1 G', 'nodenet.io/interface': 'net1' }), ENABLED, at(1), r1)),
    expected({
      egress: tbf(TBF_10M),
      ingress: tbf(TBF_10M),
      appliedAt: T0.toISOString(),
      kept: { egress: true, ingress: true },
      findings: [
        finding('warning', 'InvalidBandwidth', `kubernetes.io/ingress-bandwidth: "1 G" is not a quantity: expected ${QFORM}; ingress shaping stays as it was`),
        finding('info', 'InterfaceChangeHeld', 'nodenet.io/interface changed from "eth0" to "net1", but shaping stays on "eth0" until the malformed annotations are fixed'),
      ],
    }),
    'a change with a malformed direction holds the whole pod on the old interface',
  );
});

t.test('expiry', async (t) => {
  const bw = { 'kubernetes.io/egress-bandwidth': '10M' };
  const r1 = desiredShaping(pod({ ...bw, 'nodenet.io/shaping-expires': '90s' }), ENABLED, T0);
  t.strictSame(plain(r1), expected({ egress: tbf(TBF_10M), appliedAt: T0.toISOString(), expiresAt: at(90_000).toISOString() }), 'the clock starts at first application');

  const r2 = desiredShaping(pod({ ...bw, 'kubernetes.io/ingress-bandwidth': '20M', 'nodenet.io/shaping-expires': '90s' }), ENABLED, at(89_999), r1);
  t.strictSame(plain(r2), expected({ egress: tbf(TBF_10M), ingress: tbf(TBF_20M), appliedAt: T0.toISOString(), expiresAt: at(90_000).toISOString() }), 'an edit does not restart it');

  const expiredFinding = finding('info', 'ShapingExpired', 'nodenet.io/shaping-expires "90s" ended at 2030-01-01T00:01:30.000Z; no shaping is applied to this pod');
  const r3 = desiredShaping(pod({ ...bw, 'nodenet.io/egress-netem': 'loss 1.5x', 'nodenet.io/shaping-expires': '90s' }), ENABLED, at(90_000), r2);
  t.strictSame(plain(r3), expected({ appliedAt: T0.toISOString(), expiresAt: at(90_000).toISOString(), findings: [expiredFinding] }), 'at the instant: lifted, whatever else is written');

  const r4 = desiredShaping(pod({ ...bw, 'nodenet.io/shaping-expires': '90s' }), ENABLED, at(3_600_000), r3);
  t.strictSame(plain(r4), expected({ appliedAt: T0.toISOString(), expiresAt: at(90_000).toISOString(), findings: [expiredFinding] }), 'stays lifted');

  const r5 = desiredShaping(pod({ ...bw, 'nodenet.io/shaping-expires': '2h' }), ENABLED, at(3_600_000), r4);
  t.strictSame(plain(r5), expected({ egress: tbf(TBF_10M), appliedAt: T0.toISOString(), expiresAt: at(7_200_000).toISOString() }), 'a longer duration, still from the first application');

  const r6 = desiredShaping(pod({ 'nodenet.io/shaping-expires': '2h' }), ENABLED, at(3_700_000), r5);
  t.strictSame(plain(r6), expected({}), 'annotations removed: nothing, and the clock is reset');
  const r7 = desiredShaping(pod({ ...bw, 'nodenet.io/shaping-expires': '2h' }), ENABLED, at(3_800_000), r6);
  t.strictSame(plain(r7), expected({ egress: tbf(TBF_10M), appliedAt: at(3_800_000).toISOString(), expiresAt: at(3_800_000 + 7_200_000).toISOString() }), 'added again: a new clock');

  t.strictSame(
    plain(desiredShaping(pod({ ...bw, 'nodenet.io/shaping-expires': '2029-12-31T23:59:59Z' }), ENABLED, T0)),
    expected({ expiresAt: '2029-12-31T23:59:59.000Z', findings: [finding('info', 'ShapingExpired', 'nodenet.io/shaping-expires "2029-12-31T23:59:59Z" ended at 2029-12-31T23:59:59.000Z; no shaping is applied to this pod')] }),
    'an absolute time in the past',
  );
  t.strictSame(
    plain(desiredShaping(pod({ ...bw, 'nodenet.io/shaping-expires': '2030-01-01T02:00:00+01:00' }), ENABLED, T0)),
    expected({ egress: tbf(TBF_10M), appliedAt: T0.toISOString(), expiresAt: '2030-01-01T01:00:00.000Z' }),
    'an absolute time ahead',
  );
  t.strictSame(
    plain(desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay 1ms', 'nodenet.io/shaping-expires': '1h' }), {}, T0)).appliedAt,
    null,
    'nothing applied (gate closed): the clock does not start',
  );
});

t.test('findings name the pod and the shaping subsystem', async (t) => {
  const r = desiredShaping(pod({ 'nodenet.io/egress-netem': 'delay', 'kubernetes.io/ingress-bandwidth': '0' }), ENABLED, T0);
  t.equal(r.findings.length, 2);
  for (const f of r.findings) t.match(f, { severity: 'warning', fix: 'shaping', pod: { namespace: 'team-a', name: 'web-0' } });
  t.not(r.findings[0]!.pod, r.findings[1]!.pod, 'each finding has its own pod object');
});
