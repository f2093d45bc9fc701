// links.list reports what `ip -d -j link` reports, for links made with `ip` in a test namespace.
import t from 'tap';

import { links } from '../../lib/kernel/index.js';
import { makeNetns } from '../helpers/netns.js';
import { ipLinks } from '../helpers/witness.js';

t.test('every link and attribute matches ip -d -j link', async (t) => {
  const ns = await makeNetns(t);
  const peer = await makeNetns(t);
  const ip = (...args: string[]) => ns.exec('ip', args);
  await ip('link', 'add', 'under0', 'mtu', '1400', 'type', 'bridge');
  await ip('link', 'set', 'under0', 'alias', 'nodenet test: under "zero"');
  await ip('link', 'set', 'under0', 'up');
  await ip('link', 'add', 'br0', 'type', 'bridge');
  await ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
  await ip('link', 'set', 'veth0', 'master', 'br0');
  await ip('link', 'set', 'veth1', 'netns', peer.name);
  await ip('link', 'set', 'veth0', 'up');
  await ip('link', 'set', 'br0', 'up');
  await ip('link', 'add', 'vxlan100', 'type', 'vxlan', 'id', '100', 'dstport', '4789', 'dev', 'under0');
  await ip('link', 'set', 'vxlan100', 'master', 'br0');

  const ours = await links.list({ netns: ns.path });
  const theirs = await ipLinks(ns);
  t.same(ours.map((l) => l.name), theirs.map((l) => l.ifname), 'same links in the same (ifindex) order');
  for (const w of theirs) {
    const l = ours.find((x) => x.name === w.ifname);
    if (!l) continue;
    t.equal(l.index, w.ifindex, `${w.ifname} index`);
    t.equal(l.mtu, w.mtu, `${w.ifname} mtu`);
    t.equal(l.kind, w.linkinfo?.info_kind ?? null, `${w.ifname} kind`);
    t.equal(l.slaveKind, w.linkinfo?.info_slave_kind ?? null, `${w.ifname} slave kind`);
    t.same(l.flags, w.flags.filter((f) => f !== 'M-DOWN'), `${w.ifname} flags`);
    t.equal(l.operstate, w.operstate, `${w.ifname} operstate`);
    t.equal(l.master, w.master ?? null, `${w.ifname} master`);
    t.equal(l.alias, w.ifalias ?? null, `${w.ifname} alias`);
    t.equal(l.address, w.address ?? null, `${w.ifname} address`);
    t.equal(l.linkNetnsId, w.link_netnsid ?? null, `${w.ifname} link netnsid`);
    if (w.txqlen !== undefined) t.equal(l.txqlen, w.txqlen, `${w.ifname} txqlen`);
  }

  const byName = new Map(ours.map((l) => [l.name, l]));
  t.equal(byName.get('under0')?.alias, 'nodenet test: under "zero"');
  t.equal(byName.get('veth0')?.master, 'br0');
  t.equal(byName.get('vxlan100')?.master, 'br0');
  t.equal(byName.get('vxlan100')?.kind, 'vxlan');
  const peerLinks = await links.list({ netns: peer.path });
  t.equal(byName.get('veth0')?.linkIndex, peerLinks.find((l) => l.name === 'veth1')?.index, 'veth peer index');
  t.equal(byName.get('veth0')?.kind, 'veth');
  t.type(byName.get('veth0')?.linkNetnsId, 'number', 'the veth peer lives in another namespace');
  t.equal(byName.get('lo')?.kind, null, 'loopback has no kind');
  t.ok(byName.get('under0')?.up);
  t.notOk(byName.get('vxlan100')?.up);
});

t.test('a namespace is read from its own view, not the caller\'s', async (t) => {
  const a = await makeNetns(t);
  const b = await makeNetns(t);
  await a.exec('ip', ['link', 'add', 'only-in-a', 'type', 'bridge']);
  const [inA, inB] = await Promise.all([links.list({ netns: a.path }), links.list({ netns: b.path })]);
  t.ok(inA.some((l) => l.name === 'only-in-a'));
  t.notOk(inB.some((l) => l.name === 'only-in-a'));
  t.same(inB.map((l) => l.name), ['lo']);
});
