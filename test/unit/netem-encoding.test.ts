// netem's wire format, checked field by field (this machine's kernel has no netem to ask; the VM
// stage checks the kernel's reading of it).
import t from 'tap';

import { parseAttributes } from '../../lib/kernel/qdiscs/attributes.js';
import { formatHandle, parseHandle } from '../../lib/kernel/qdiscs/handles.js';
import { decodeNetem, encodeNetem, NetemOptionError } from '../../lib/kernel/qdiscs/netem.js';
import { decodeTbf, encodeTbf, TbfOptionError } from '../../lib/kernel/qdiscs/tbf.js';

t.test('tc_netem_qopt and attributes', async (t) => {
  const b = encodeNetem({ delay: 100_000_000, jitter: 10_000_000, delayCorrelation: 25, loss: 1, duplicate: 0.1, limit: 500 });
  t.equal(b.readUInt32LE(0), 100_000_000 / 64, 'latency in psched ticks (64 ns)');
  t.equal(b.readUInt32LE(4), 500, 'limit');
  t.equal(b.readUInt32LE(8), 42949673, '1% as tc scales it');
  t.equal(b.readUInt32LE(12), 0, 'no gap');
  t.equal(b.readUInt32LE(16), Math.round(0.001 * 0xffffffff), 'duplicate');
  t.equal(b.readUInt32LE(20), 10_000_000 / 64, 'jitter ticks');
  const attrs = parseAttributes(b, 24);
  t.equal(attrs.get(10)?.readBigInt64LE(0), 100_000_000n, 'TCA_NETEM_LATENCY64 exact');
  t.equal(attrs.get(11)?.readBigInt64LE(0), 10_000_000n, 'TCA_NETEM_JITTER64 exact');
  t.equal(attrs.get(1)?.readUInt32LE(0), Math.round(0.25 * 0xffffffff), 'delay correlation');
});

t.test('every parameter survives encode → decode', async (t) => {
  const options = {
    delay: 250_000_000,
    jitter: 5_000_000,
    delayCorrelation: 10,
    loss: 2.5,
    lossCorrelation: 50,
    duplicate: 1,
    duplicateCorrelation: 5,
    corrupt: 0.5,
    corruptCorrelation: 1,
    reorder: 25,
    reorderCorrelation: 50,
    gap: 5,
    rate: 8_000_000,
    packetOverhead: -4,
    cellSize: 53,
    cellOverhead: 5,
    limit: 2000,
    ecn: true,
  };
  t.same(decodeNetem(encodeNetem(options)), { ...options, lossModel: 'random' });
});

t.test('tc conventions and refusals', async (t) => {
  t.equal(decodeNetem(encodeNetem({ delay: 1_000_000, reorder: 10 })).gap, 1, 'reorder without gap means gap 1, as tc does');
  t.equal(decodeNetem(encodeNetem({})).limit, 1000, 'default limit');
  t.equal(decodeNetem(encodeNetem({ rate: 80_000_000_000 })).rate, 80_000_000_000, 'rates past 4 GB/s via TCA_NETEM_RATE64');
  t.throws(() => encodeNetem({ jitter: 1000 }), NetemOptionError);
  t.throws(() => encodeNetem({ reorder: 5 }), NetemOptionError);
  t.throws(() => encodeNetem({ loss: -1 }), NetemOptionError);
  t.throws(() => encodeNetem({ delay: 1.5 }), NetemOptionError);
  t.throws(() => encodeNetem({ delay: 1000, distribution: 'normal' }), NetemOptionError, 'a distribution needs jitter');
  const withTable = encodeNetem({ delay: 10_000_000, jitter: 1_000_000, distribution: 'normal' });
  t.ok((parseAttributes(withTable, 24).get(2)?.length ?? 0) > 1000, 'the normal table from iproute2 is sent');
});

t.test('tbf round trip and refusals', async (t) => {
  t.same(decodeTbf(encodeTbf({ rate: 10_000_000, burst: 32_768, latency: 50_000_000 })), { rate: 10_000_000, burst: 32_768, limit: 95_268, peakrate: 0, mtu: 0, overhead: 0, mpu: 0 });
  t.throws(() => encodeTbf({ rate: 1000, burst: 10 }), TbfOptionError, 'limit or latency');
  t.throws(() => encodeTbf({ rate: 1000, burst: 10, limit: 10, latency: 1 }), TbfOptionError, 'not both');
  t.throws(() => encodeTbf({ rate: 1000, burst: 10, limit: 10, peakrate: 2000 }), TbfOptionError, 'peakrate needs mtu');
});

t.test('handles as tc writes them', async (t) => {
  t.equal(parseHandle('root'), 0xffffffff);
  t.equal(parseHandle('1:'), 0x10000);
  t.equal(parseHandle('ffff:'), 0xffff0000);
  t.equal(parseHandle('1:a'), 0x1000a);
  t.equal(formatHandle(0x1000a), '1:a');
  t.equal(formatHandle(0x10000), '1:');
  t.equal(formatHandle(0), '0:');
  t.throws(() => parseHandle('1'), TypeError);
});
