// A rule's comment in NFTA_RULE_USERDATA: libnftnl's TLV (type 0, u8 length with the NUL, the
// NUL-terminated text), cut so the whole userdata fits the kernel's 256 bytes, never inside a
// UTF-8 sequence.
import t from 'tap';

import { cutComment, decodeComment, encodeComment, MAX_COMMENT_BYTES } from '../../lib/kernel/netfilter/nft/userdata.js';

t.test('the TLV nft writes', async (t) => {
  t.same(encodeComment('shop/web'), Buffer.from([0, 9, ...Buffer.from('shop/web'), 0]));
  t.same(encodeComment(''), Buffer.from([0, 1, 0]), 'an empty comment is just its NUL');
  t.equal(decodeComment(encodeComment('kube-system/kube-dns:dns')), 'kube-system/kube-dns:dns');
});

t.test('cut to fit 256 bytes in all', async (t) => {
  t.equal(MAX_COMMENT_BYTES, 253);
  const long = 'x'.repeat(300);
  const u = encodeComment(long);
  t.equal(u.length, 256);
  t.equal(u[1], 254, 'the length counts the NUL');
  t.equal(u[255], 0);
  t.equal(decodeComment(u), 'x'.repeat(253));
  t.equal(encodeComment('x'.repeat(253)).length, 256, 'exactly the most that fits is kept whole');
});

t.test('never inside a UTF-8 sequence', async (t) => {
  // 252 ASCII bytes, then a 2-byte and a 4-byte character: only the 2-byte one could fit... it does
  // not (252 + 2 = 254 > 253), so both go.
  t.equal(cutComment('a'.repeat(252) + 'é😀'), 'a'.repeat(252));
  t.equal(cutComment('a'.repeat(251) + 'é😀'), 'a'.repeat(251) + 'é');
  const cut = cutComment('😀'.repeat(100));
  t.equal(Buffer.byteLength(cut), 252, '63 whole 4-byte characters');
  t.equal(decodeComment(encodeComment('😀'.repeat(100))), cut, 'decodes back to exactly the cut text');
  t.equal(cutComment('short ünïcödé'), 'short ünïcödé', 'short text is untouched');
});

t.test('reading userdata that is absent, foreign or broken', async (t) => {
  t.equal(decodeComment(null), null);
  t.equal(decodeComment(Buffer.alloc(0)), null);
  t.equal(decodeComment(Buffer.from([1, 2, 9, 9, 0, 3, 0x61, 0x62, 0])), 'ab', 'a comment after another TLV');
  t.equal(decodeComment(Buffer.from([1, 2, 9, 9])), null, 'no comment TLV');
  t.equal(decodeComment(Buffer.from([0, 40, 0x61])), null, 'a length past the end');
  t.equal(decodeComment(Buffer.from([0, 2, 0x61, 0x62])), 'ab', 'no NUL: the bytes given');
});
