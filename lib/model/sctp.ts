// `-m sctp --dport N`: lib/kernel has no sctp codec yet, so the match travels as its raw payload,
// built exactly as iptables 1.8.9 fills struct xt_sctp_info (checked against iptables by
// test/kernel/95.model-apply.test.ts). Move this into lib/kernel once it encodes sctp itself.
import type { ExtensionSpec } from '../kernel/netfilter/index.js';

// struct xt_sctp_info { u16 dpts[2]; u16 spts[2]; u32 chunkmap[64]; u32 chunk_match_type;
//   struct xt_sctp_flag_info flag_info[4] (3 bytes each); int flag_count; u32 flags; u32 invflags; }
const SIZE = 292;
const FLAG_INFO = 268;
const FLAGS = 284;
const DEST_PORTS = 0x02;

// Ports are in host byte order; the check avoids importing node:os into the pure model.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function sctpDport(port: number): ExtensionSpec {
  const raw = Buffer.alloc(SIZE);
  const u16 = (off: number, v: number) => (LITTLE_ENDIAN ? raw.writeUInt16LE(v, off) : raw.writeUInt16BE(v, off));
  u16(0, port);
  u16(2, port);
  // libxt_sctp's init marks the four chunk-flag slots unused with chunk type 0xff.
  for (let i = 0; i < 4; i++) raw.writeUInt8(0xff, FLAG_INFO + 3 * i);
  if (LITTLE_ENDIAN) raw.writeUInt32LE(DEST_PORTS, FLAGS);
  else raw.writeUInt32BE(DEST_PORTS, FLAGS);
  return { name: 'sctp', revision: 0, raw };
}
