// drop-INVALID: a packet conntrack cannot place (typically an out-of-window TCP segment of a
// masqueraded pod connection) is not de-NATed, so it reaches the node's own stack, which answers
// with a RST that kills the pod's connection (kubernetes#74839). Dropping INVALID in INPUT, ahead of
// everything else, stops the RST. It does not depend on how Services are proxied.
import type { IpFamily } from '../kernel/netfilter/index.js';
import * as b from '../kernel/netfilter/build.js';

import { CHAINS, comment, jumpRule, type Part } from './chains.js';
import type { Finding, ModelInput } from './types.js';

const SYSCTL = 'net.netfilter.nf_conntrack_tcp_be_liberal';

export function renderDropInvalid(input: ModelInput, families: IpFamily[]): { parts: Part[]; findings: Finding[] } {
  if (!input.config.dropInvalidInput) return { parts: [], findings: [] };
  const parts: Part[] = families.map((family) => ({
    family,
    table: 'filter',
    chains: [
      {
        name: CHAINS.dropInvalid,
        rules: [b.rule({}, [comment('nodenet: conntrack INVALID, the node would answer with a RST'), b.ctstate(['INVALID'])], b.drop())],
      },
    ],
    jumps: [{ chain: 'INPUT', rule: jumpRule(CHAINS.dropInvalid, 'nodenet drop-invalid: no RST for out-of-window packets of pods') }],
  }));

  const findings: Finding[] = [];
  const liberal = input.facts.tcpBeLiberal;
  if (liberal === true) {
    findings.push({
      severity: 'info',
      fix: 'drop-invalid',
      reason: 'RedundantWithTcpBeLiberal',
      message:
        `${SYSCTL}=1 on this node already keeps out-of-window segments from being marked INVALID, so the DROP rule is redundant; ` +
        'it stays installed because RULE_DROP_INVALID_INPUT_ENABLE asks for it (set it to false to rely on the sysctl alone)',
    });
  } else {
    findings.push({
      severity: 'info',
      fix: 'drop-invalid',
      reason: 'TcpBeLiberalAlternative',
      message:
        `${SYSCTL} is ${liberal === false ? '0' : 'unreadable'} on this node; setting it to 1 (kube-proxy's mitigation) is an alternative fix ` +
        'to this DROP rule: conntrack then accepts out-of-window segments instead of marking them INVALID',
    });
  }
  return { parts, findings };
}
