// A rule's comment, kept where nft keeps it: NFTA_RULE_USERDATA as libnftnl's TLVs
// (u8 type, u8 length, value), the comment under type 0 as a NUL-terminated string. nft reads it
// back from there, so `nft list` shows nodenet's comments as its own.
import { UDATA_RULE_COMMENT, USERDATA_MAX } from './constants.js';

const TLV_HEADER = 2;
/** The most comment bytes that fit: the whole userdata is at most 256 bytes, with header and NUL. */
export const MAX_COMMENT_BYTES = USERDATA_MAX - TLV_HEADER - 1;

/**
 * The comment cut to MAX_COMMENT_BYTES at a character boundary: a cut inside a UTF-8 sequence would
 * leave bytes nft prints as garbage and nodenet could not decode back to the same text.
 */
export function cutComment(text: string): string {
  if (Buffer.byteLength(text) <= MAX_COMMENT_BYTES) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_COMMENT_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** NFTA_RULE_USERDATA holding just the comment (cut to fit). */
export function encodeComment(text: string): Buffer {
  const value = Buffer.from(cutComment(text) + '\0', 'utf8');
  return Buffer.concat([Buffer.from([UDATA_RULE_COMMENT, value.length]), value]);
}

/** The comment in a rule's userdata, or null when there is none (or the TLVs do not parse). */
export function decodeComment(userdata: Buffer | null | undefined): string | null {
  if (!userdata) return null;
  for (let at = 0; at + TLV_HEADER <= userdata.length; ) {
    const type = userdata[at]!;
    const len = userdata[at + 1]!;
    const value = userdata.subarray(at + TLV_HEADER, at + TLV_HEADER + len);
    if (value.length < len) return null;
    if (type === UDATA_RULE_COMMENT) {
      const end = value.indexOf(0);
      return value.subarray(0, end < 0 ? value.length : end).toString('utf8');
    }
    at += TLV_HEADER + len;
  }
  return null;
}
