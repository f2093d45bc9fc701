// How nodenet knows a match or target extension: decode the kernel's payload, print it as
// iptables-save does.
import type { Payload } from './payload.js';
import type { IpFamily } from './types.js';

export interface ExtensionCodec<Options> {
  kind: 'match' | 'target';
  name: string;
  revision: number;
  /** Set when the payload differs per family (MASQUERADE, REJECT); both families otherwise. */
  family?: IpFamily;
  decode(payload: Payload, family: IpFamily): Options;
  /** The text iptables-save prints after `-m NAME` / `-j NAME`; every option starts with a space. */
  save(options: Options, family: IpFamily): string;
  /** The name iptables prints instead of the extension's own (`state` for conntrack, `NOTRACK` for CT). */
  alias?(options: Options): string;
}

// Codecs are stored type-erased; each codec only ever sees options it decoded itself.
export type AnyCodec = ExtensionCodec<any>;

const registry = new Map<string, AnyCodec>();

function key(kind: 'match' | 'target', name: string, revision: number, family: IpFamily | '*'): string {
  return `${kind}/${name}/${revision}/${family}`;
}

export function registerCodec(codec: AnyCodec): void {
  const k = key(codec.kind, codec.name, codec.revision, codec.family ?? '*');
  if (registry.has(k)) throw new Error(`duplicate extension codec ${k}`);
  registry.set(k, codec);
}

export function findCodec(kind: 'match' | 'target', name: string, revision: number, family: IpFamily): AnyCodec | undefined {
  return registry.get(key(kind, name, revision, family)) ?? registry.get(key(kind, name, revision, '*'));
}

/** A string as xtables_save_string prints it: bare when it is a plain word, else double-quoted with
 * `"`, `\` and `'` escaped. */
export function saveString(value: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(value)) return ' ' + value;
  return ' "' + value.replace(/["\\']/g, (c) => '\\' + c) + '"';
}

export function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16);
}
