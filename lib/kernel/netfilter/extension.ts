// How nodenet knows a match or target extension: decode the kernel's payload, print it as
// iptables-save does.
import { endianness } from 'node:os';

import { putAddress } from './addresses.js';
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
  /** With encodeInto: the payload's fixed size. */
  size?: number;
  /**
   * The payload written through w, whose size bytes start zeroed (so that it can write straight
   * into a larger buffer); registerCodec derives encode from it.
   */
  encodeInto?(options: Options, w: StructWriter, family: IpFamily): void;
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

const PREFERRED = { match: new Map<string, number>(), target: new Map<string, number>() };
for (const [k, revision] of Object.entries(PREFERRED_REVISION)) {
  const [kind, name] = k.split('/') as ['match' | 'target', string];
  PREFERRED[kind].set(name, revision);
}

/** PREFERRED_REVISION without building its key. */
export function preferredRevision(kind: 'match' | 'target', name: string): number | undefined {
  return PREFERRED[kind].get(name);
}

/**
 * Fixed-size C struct writer in host byte order (network order where the name says `be`): into a
 * zeroed buffer of its own, or (retarget) into size bytes of a larger buffer, offsets relative.
 */
export class StructWriter {
  private buf: Buffer;
  private base: number;
  private size: number;

  constructor(size: number) {
    this.buf = Buffer.alloc(size);
    this.base = 0;
    this.size = size;
  }

  /** Writes from now on go to target[base, base + size), which the caller has zeroed. */
  retarget(target: Buffer, base: number, size: number): this {
    this.buf = target;
    this.base = base;
    this.size = size;
    return this;
  }

  get bytes(): Buffer {
    return this.base === 0 && this.buf.length === this.size ? this.buf : this.buf.subarray(this.base, this.base + this.size);
  }

  u8(offset: number, v: number): this {
    this.buf.writeUInt8(v, this.base + offset);
    return this;
  }

  u16(offset: number, v: number): this {
    if (HOST_LITTLE_ENDIAN) this.buf.writeUInt16LE(v, this.base + offset);
    else this.buf.writeUInt16BE(v, this.base + offset);
    return this;
  }

  be16(offset: number, v: number): this {
    this.buf.writeUInt16BE(v, this.base + offset);
    return this;
  }

  u32(offset: number, v: number): this {
    if (HOST_LITTLE_ENDIAN) this.buf.writeUInt32LE(v >>> 0, this.base + offset);
    else this.buf.writeUInt32BE(v >>> 0, this.base + offset);
    return this;
  }

  /** A string into a fixed char array, NUL-padded; throws when it does not fit with its NUL. */
  cstring(offset: number, size: number, v: string, what: string): this {
    const at = this.base + offset;
    const n = v.length;
    // Plain ASCII (every comment nodenet writes) byte by byte; anything else through the encoder.
    let i = 0;
    if (n < size) {
      const buf = this.buf;
      for (; i < n; i++) {
        const c = v.charCodeAt(i);
        if (c >= 0x80) break;
        buf[at + i] = c;
      }
    }
    if (i === n) return this;
    const length = Buffer.byteLength(v, 'utf8');
    if (length >= size) throw new RangeError(`${what} is ${length} bytes; at most ${size - 1} fit`);
    this.buf.write(v, at, length, 'utf8');
    return this;
  }

  /** An address of the family in network order; false (nothing sensible written) when the text is not one. */
  address(offset: number, text: string, family: IpFamily): boolean {
    return putAddress(text, family, this.buf, this.base + offset);
  }

  /** Raw bytes (an address in network order). */
  put(offset: number, b: Uint8Array): this {
    this.buf.set(b, this.base + offset);
    return this;
  }
}

// Codecs are stored type-erased; each codec only ever sees options it decoded itself.
export type AnyCodec = ExtensionCodec<any>;

interface Slot {
  any?: AnyCodec;
  ipv4?: AnyCodec;
  ipv6?: AnyCodec;
}

// kind -> name -> revision -> per family: no key string built per lookup.
const registry = { match: new Map<string, Map<number, Slot>>(), target: new Map<string, Map<number, Slot>>() };

export function registerCodec(codec: AnyCodec): void {
  let revisions = registry[codec.kind].get(codec.name);
  if (!revisions) registry[codec.kind].set(codec.name, (revisions = new Map()));
  let slot = revisions.get(codec.revision);
  if (!slot) revisions.set(codec.revision, (slot = {}));
  const family = codec.family ?? 'any';
  if (slot[family]) throw new Error(`duplicate extension codec ${codec.kind}/${codec.name}/${codec.revision}/${codec.family ?? '*'}`);
  const { encodeInto, size } = codec;
  if (encodeInto && !codec.encode) {
    if (size === undefined) throw new Error(`extension codec ${codec.kind}/${codec.name}/${codec.revision}: encodeInto needs size`);
    codec.encode = (options, f) => {
      const w = new StructWriter(size);
      encodeInto.call(codec, options, w, f);
      return w.bytes;
    };
  }
  slot[family] = codec;
}

export function findCodec(kind: 'match' | 'target', name: string, revision: number, family: IpFamily): AnyCodec | undefined {
  const slot = registry[kind].get(name)?.get(revision);
  if (!slot) return undefined;
  return slot[family] ?? slot.any;
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
