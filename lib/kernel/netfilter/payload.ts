// Reading fixed C structures out of extension payloads and rule headers.
import { endianness } from 'node:os';

import { formatIPv4, formatIPv6 } from './addresses.js';
import type { IpFamily } from './types.js';

const HOST_LE = endianness() === 'LE';

/** Bounds-checked view of a payload; fields in host order unless the name says `be`. */
export class Payload {
  constructor(readonly bytes: Buffer) {}

  get length(): number {
    return this.bytes.length;
  }

  private check(offset: number, size: number): void {
    if (offset < 0 || offset + size > this.bytes.length) {
      throw new RangeError(`payload of ${this.bytes.length} bytes has no field at ${offset}+${size}`);
    }
  }

  u8(offset: number): number {
    this.check(offset, 1);
    return this.bytes.readUInt8(offset);
  }

  u16(offset: number): number {
    this.check(offset, 2);
    return HOST_LE ? this.bytes.readUInt16LE(offset) : this.bytes.readUInt16BE(offset);
  }

  be16(offset: number): number {
    this.check(offset, 2);
    return this.bytes.readUInt16BE(offset);
  }

  u32(offset: number): number {
    this.check(offset, 4);
    return HOST_LE ? this.bytes.readUInt32LE(offset) : this.bytes.readUInt32BE(offset);
  }

  be32(offset: number): number {
    this.check(offset, 4);
    return this.bytes.readUInt32BE(offset);
  }

  /** A NUL-terminated string in a fixed-size char array. Comments and log prefixes are UTF-8 in
   * practice; iptables prints their bytes unchanged. */
  cstring(offset: number, size: number): string {
    this.check(offset, size);
    const field = this.bytes.subarray(offset, offset + size);
    const end = field.indexOf(0);
    return field.subarray(0, end < 0 ? size : end).toString('utf8');
  }

  slice(offset: number, size: number): Buffer {
    this.check(offset, size);
    return this.bytes.subarray(offset, offset + size);
  }

  ipv4(offset: number): string {
    return formatIPv4(this.slice(offset, 4));
  }

  ipv6(offset: number): string {
    return formatIPv6(this.slice(offset, 16));
  }

  /** A `union nf_inet_addr` (16 bytes) read as the family's address. */
  inetAddress(offset: number, family: IpFamily): string {
    this.check(offset, 16);
    return family === 'ipv4' ? this.ipv4(offset) : this.ipv6(offset);
  }
}
