// Inputs and outputs of the shaping model: plain data, no I/O. The plan types are built from the
// qdisc API's own option types, so a plan can be handed to qdiscs.replace() as it is.
import type { NetemOptions, TbfOptions } from '../../kernel/qdiscs/index.js';
import type { Finding } from '../types.js';

/** The parts of a core/v1 Pod the shaping model reads. */
export interface ShapingPodInput {
  metadata: { namespace: string; name: string; annotations?: Readonly<Record<string, string>> };
  spec?: { hostNetwork?: boolean };
}

export interface NetemSpec {
  kind: 'netem';
  netem: NetemOptions;
}

export interface TbfSpec {
  kind: 'tbf';
  tbf: TbfOptions;
}

/**
 * What one direction of one pod interface should carry: netem alone, tbf alone, or netem at the
 * root with a tbf under its class when both are asked for. `root` and `child` are QdiscSpecs.
 */
export type ShapingPlan = { root: NetemSpec; child: TbfSpec | null } | { root: TbfSpec; child: null };

export type Direction = 'egress' | 'ingress';

/** The last shaping the caller acted on (the previous result), or what it adopted from the kernel. */
export interface PreviousShaping {
  interface: string;
  egress: ShapingPlan | null;
  ingress: ShapingPlan | null;
  /** When this pod's shaping was first applied; the start of a duration-form expiry. */
  appliedAt: Date | null;
  expiresAt: Date | null;
}

export interface PodShaping extends PreviousShaping {
  pod: { namespace: string; name: string };
  /**
   * Per direction: true when the annotations could not be turned into a new plan (a malformed or
   * out-of-range value), so the plan shown is the previous one and the caller should leave that
   * direction's kernel state as it is — including when no previous plan was known to the model.
   */
  kept: Record<Direction, boolean>;
  findings: Finding[];
}
