// qdiscs: queueing disciplines (netem, tbf, any kind by raw options) through rtnetlink.
import { KernelError, isKernelError, kernelCall } from '../errors.js';
import type { NetnsOption } from '../links.js';
import { native, type RawQdisc } from '../native.js';
import { formatHandle, parseHandle } from './handles.js';
import { decodeNetem, encodeNetem, type NetemOptions, type NetemReport } from './netem.js';
import { decodeTbf, encodeTbf, type TbfOptions, type TbfReport } from './tbf.js';

export { formatHandle, isNodenetHandle, NODENET_CHILD_HANDLE, NODENET_CHILD_PARENT, NODENET_ROOT_HANDLE, parseHandle, TC_H_ROOT } from './handles.js';
export { NetemOptionError, type NetemDistribution, type NetemOptions, type NetemReport } from './netem.js';
export { TbfOptionError, type TbfOptions, type TbfReport } from './tbf.js';

/** What to install: netem, tbf, or any other kind with its TCA_OPTIONS bytes (none for e.g. pfifo_fast). */
export type QdiscSpec =
  | { kind: 'netem'; netem: NetemOptions }
  | { kind: 'tbf'; tbf: TbfOptions }
  | { kind: string; options?: Buffer };

export interface QdiscTarget extends NetnsOption {
  device: string;
  /** "root" (default), or a class such as "1:1". */
  parent?: string;
  /** "MAJ:" for the new qdisc; the kernel picks one when absent. */
  handle?: string;
}

export interface QdiscStats {
  bytes: bigint;
  packets: bigint;
  drops: number;
  overlimits: number;
  requeues: number;
  qlen: number;
  backlog: number;
}

export interface Qdisc {
  device: string;
  ifindex: number;
  kind: string;
  /** "1:" as tc prints it; "0:" for a default qdisc the kernel made. */
  handle: string;
  /** "root", or the parent class. */
  parent: string;
  netem?: NetemReport;
  tbf?: TbfReport;
  /** TCA_OPTIONS as the kernel reported it. */
  raw: Buffer;
  stats: QdiscStats | null;
}

function optionsOf(spec: QdiscSpec): Buffer | undefined {
  if (spec.kind === 'netem' && 'netem' in spec) return encodeNetem(spec.netem);
  if (spec.kind === 'tbf' && 'tbf' in spec) return encodeTbf(spec.tbf);
  return 'options' in spec ? spec.options : undefined;
}

async function change(op: 'add' | 'replace' | 'change' | 'delete', target: QdiscTarget, spec?: QdiscSpec): Promise<void> {
  const request = {
    op,
    device: target.device,
    parent: parseHandle(target.parent ?? 'root'),
    handle: target.handle === undefined ? 0 : parseHandle(target.handle),
    kind: spec?.kind ?? '',
    options: spec ? optionsOf(spec) : undefined,
  };
  try {
    await kernelCall(native().changeQdisc(request, target.netns));
  } catch (error) {
    throw explainMissingKind(error, request.kind);
  }
}

// The kernel's answer to an unknown kind is a bare ENOENT with "Specified qdisc kind is unknown";
// the operator needs to hear which module to load.
function explainMissingKind(error: unknown, kind: string): unknown {
  if (!isKernelError(error) || error.code !== 'ENOENT' || !/qdisc kind is unknown/i.test(error.extack ?? '')) return error;
  return new KernelError({ ...error, message: `${kind} is not available in this kernel (load the sch_${kind} module): ${error.message}` });
}

/** Adds a qdisc; rejects with EEXIST when one is already at parent. */
export function add(target: QdiscTarget, spec: QdiscSpec): Promise<void> {
  return change('add', target, spec);
}

/** Installs a qdisc at parent, replacing what is there (tc qdisc replace). */
export function replace(target: QdiscTarget, spec: QdiscSpec): Promise<void> {
  return change('replace', target, spec);
}

/** Changes the parameters of the qdisc at parent in place, keeping its queue (tc qdisc change). */
export function update(target: QdiscTarget, spec: QdiscSpec): Promise<void> {
  return change('change', target, spec);
}

/** Deletes the qdisc at parent (the kernel puts its default back at the root). */
export function remove(target: QdiscTarget): Promise<void> {
  return change('delete', target);
}

function decode(raw: RawQdisc): Qdisc {
  const q: Qdisc = {
    device: raw.device,
    ifindex: raw.ifindex,
    kind: raw.kind,
    handle: formatHandle(raw.handle),
    parent: formatHandle(raw.parent),
    raw: raw.options,
    stats: raw.stats,
  };
  if (raw.kind === 'netem' && raw.options.length >= 24) q.netem = decodeNetem(raw.options);
  if (raw.kind === 'tbf' && raw.options.length > 0) q.tbf = decodeTbf(raw.options);
  return q;
}

/** The qdiscs of one device, or of every device, with parameters and statistics. */
export async function list(options: NetnsOption & { device?: string } = {}): Promise<Qdisc[]> {
  const raw = await kernelCall(native().listQdiscs(options.device, options.netns));
  return raw.map(decode);
}
