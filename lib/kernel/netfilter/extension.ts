// How nodenet knows a match or target extension: decode the kernel's payload, print it as
// iptables-save does.
import { endianness } from 'node:os';

import type { Payload } from './payload.js';
import type { IpFamily } from './types.js';

const HOST_LITTLE_ENDIAN = endianness() === 'LE';

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
  /** The payload iptables 1.8.9 would write for these options (exact struct size, unpadded). */
  encode?(options: Options, family: IpFamily): Buffer;
}

/** The revision iptables 1.8.9 writes for each extension nodenet can encode. */
export const PREFERRED_REVISION: Readonly<Record<string, number>> = {
  'match/tcp': 0,
  'match/udp': 0,
  'match/comment': 0,
  'match/addrtype': 1,
  'match/conntrack': 3,
  'match/mark': 1,
  'target/DNAT': 2,
  'target/MARK': 2,
  'target/CT': 2,
};

/** Fixed-size C struct writer in host byte order (network order where the name says `be`). */
export class StructWriter {
  readonly bytes: Buffer;
  private readonly le = HOST_LITTLE_ENDIAN;

  constructor(size: number) {
    this.bytes = Buffer.alloc(size);
  }

  u8(offset: number, v: number): this {
    this.bytes.writeUInt8(v, offset);
    return this;
  }

  u16(offset: number, v: number): this {
    if (this.le) this.bytes.writeUInt16LE(v, offset);
    else this.bytes.writeUInt16BE(v, offset);
    return this;
  }

  be16(offset: number, v: number): this {
    this.bytes.writeUInt16BE(v, offset);
    return this;
  }

  u32(offset: number, v: number): this {
    if (this.le) this.bytes.writeUInt32LE(v >>> 0, offset);
    else this.bytes.writeUInt32BE(v >>> 0, offset);
    return this;
  }

  /** A string into a fixed char array, NUL-padded; throws when it does not fit with its NUL. */
  cstring(offset: number, size: number, v: string, what: string): this {
    const b = Buffer.from(v, 'utf8');
    if (b.length >= size) throw new RangeError(`${what} is ${b.length} bytes; at most ${size - 1} fit`);
    b.copy(this.bytes, offset);
    return this;
  }

  /** Raw bytes (an address in network order). */
  put(offset: number, b: Uint8Array): this {
    Buffer.from(b).copy(this.bytes, offset);
    return this;
  }
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
