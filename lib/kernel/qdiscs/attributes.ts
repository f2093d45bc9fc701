// Netlink attributes (struct nlattr: u16 length, u16 type, payload padded to 4 bytes), as they
// appear inside TCA_OPTIONS.
import { endianness } from 'node:os';

const LE = endianness() === 'LE';
const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Builds a run of attributes, host byte order, each padded to 4 bytes. */
export class AttributeWriter {
  private readonly parts: Buffer[] = [];

  put(type: number, payload: Buffer): this {
    const header = Buffer.alloc(NLA_HDRLEN);
    const length = NLA_HDRLEN + payload.length;
    if (length > 0xffff) throw new RangeError(`attribute ${type} of ${payload.length} bytes does not fit in a netlink attribute`);
    if (LE) {
      header.writeUInt16LE(length, 0);
      header.writeUInt16LE(type, 2);
    } else {
      header.writeUInt16BE(length, 0);
      header.writeUInt16BE(type, 2);
    }
    this.parts.push(header, payload, Buffer.alloc(align4(length) - length));
    return this;
  }

  u32(type: number, value: number): this {
    return this.put(type, u32(value));
  }

  u64(type: number, value: bigint): this {
    const b = Buffer.alloc(8);
    if (LE) b.writeBigUInt64LE(value);
    else b.writeBigUInt64BE(value);
    return this.put(type, b);
  }

  s64(type: number, value: bigint): this {
    const b = Buffer.alloc(8);
    if (LE) b.writeBigInt64LE(value);
    else b.writeBigInt64BE(value);
    return this.put(type, b);
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A host-order u32. */
export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(value >>> 0);
  else b.writeUInt32BE(value >>> 0);
  return b;
}

/** The attributes in buf from offset on, by type (the last one wins, as in the kernel's parser). */
export function parseAttributes(buf: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = offset;
  while (at + NLA_HDRLEN <= buf.length) {
    const length = LE ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
    const type = (LE ? buf.readUInt16LE(at + 2) : buf.readUInt16BE(at + 2)) & NLA_TYPE_MASK;
    if (length < NLA_HDRLEN || at + length > buf.length) break;
    out.set(type, buf.subarray(at + NLA_HDRLEN, at + length));
    at += align4(length);
  }
  return out;
}

export { LE as HOST_LITTLE_ENDIAN };
