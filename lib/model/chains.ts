// The chains nodenet owns, and the pieces each fix contributes to a table. Names stay within the
// 28 bytes a jump target can carry and start with the prefix netfilter.apply treats as owned.
import type { ExtensionSpec, IpFamily, RuleSpec } from '../kernel/netfilter/index.js';
import * as b from '../kernel/netfilter/build.js';

export const CHAINS = {
  /** filter, jumped to first from INPUT. */
  dropInvalid: 'NODENET-DROP-INVALID',
  /** filter, jumped to from INPUT, OUTPUT and FORWARD: the ACCEPTs untracked DNS packets need. */
  dnsAccept: 'NODENET-DNS-ACCEPT',
  /** raw, jumped to from PREROUTING and OUTPUT. */
  dnsNotrack: 'NODENET-DNS-NOTRACK',
  /** nat, jumped to from PREROUTING: traffic from pods. */
  externalPods: 'NODENET-EXTERNAL-PODS',
  /** nat, jumped to from OUTPUT for locally sourced packets: hostNetwork pods and the node. */
  externalHost: 'NODENET-EXTERNAL-HOST',
} as const;

export const TABLES = ['filter', 'nat', 'raw'] as const;
export type ManagedTable = (typeof TABLES)[number];

/** What one fix adds to one family's table. */
export interface Part {
  family: IpFamily;
  table: ManagedTable;
  chains: Array<{ name: string; rules: RuleSpec[] }>;
  jumps: Array<{ chain: string; rule: RuleSpec }>;
}

const MAX_COMMENT = 255;

/**
 * A comment match, cut to the 255 bytes xt_comment holds (never inside a UTF-8 sequence); control
 * characters, which iptables-save could not print back, become "?".
 */
export function comment(text: string): ExtensionSpec {
  const points = Array.from(text.replace(/[\u0000-\u001f\u007f]/g, '?'));
  while (Buffer.byteLength(points.join('')) > MAX_COMMENT) points.pop();
  return b.comment(points.join(''));
}

/** A jump into an owned chain, commented so `iptables -L` says whose it is and why. */
export function jumpRule(chain: string, why: string, extra: ExtensionSpec[] = []): RuleSpec {
  return b.rule({}, [comment(why), ...extra], b.jump(chain));
}
