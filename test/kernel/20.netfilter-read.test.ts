// netfilter.read decodes rules written by iptables-legacy into the structured form.
import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import type { Chain, Rule, Table } from '../../lib/kernel/netfilter/types.js';
import { makeNetns } from '../helpers/netns.js';
import { iptables } from '../helpers/witness.js';

function chain(table: Table, name: string): Chain {
  const c = table.chains.find((x) => x.name === name);
  if (!c) throw new Error(`no chain ${name} in ${table.name}`);
  return c;
}

function optionsOf(rule: Rule, name: string): unknown {
  return rule.matches.find((m) => m.name === name)?.options;
}

t.test('DNAT with ports, comment, addresses and protocol (ipv4)', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv4', ['-t', 'nat', '-A', 'PREROUTING', '-s', '10.244.0.0/16', '-d', '203.0.113.10', '-p', 'tcp',
    '-m', 'comment', '--comment', 'shop/web', '-m', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.96.0.10:8080']);
  const nat = await netfilter.read({ netns: ns.path, table: 'nat' });
  t.equal(nat.family, 'ipv4');
  t.same(nat.chains.map((c) => c.name), ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);
  const [rule] = chain(nat, 'PREROUTING').rules;
  t.ok(rule);
  if (!rule) return;
  t.same(rule.source, { value: '10.244.0.0/16', invert: false });
  t.same(rule.destination, { value: '203.0.113.10/32', invert: false });
  t.same(rule.protocol, { number: 6, name: 'tcp', invert: false });
  t.equal(rule.inInterface, null);
  t.same(rule.matches.map((m) => [m.name, m.revision]), [['comment', 0], ['tcp', 0]]);
  t.same(optionsOf(rule, 'comment'), { comment: 'shop/web' });
  t.same(optionsOf(rule, 'tcp'), { sourcePorts: null, destinationPorts: { value: { from: 80, to: 80 }, invert: false }, option: null, flags: null });
  t.match(rule.target, { kind: 'extension', name: 'DNAT', revision: 2 });
  if (rule.target.kind !== 'extension') return;
  t.same(rule.target.options, {
    addresses: { from: '10.96.0.10', to: '10.96.0.10' },
    ports: { from: 8080, to: 8080, base: null },
    random: false,
    randomFully: false,
    persistent: false,
  });
});

t.test('jumps, gotos, verdicts, addrtype, conntrack state and chain facts', async (t) => {
  const ns = await makeNetns(t);
  const ipt = (...args: string[]) => iptables(ns, 'ipv4', args);
  await ipt('-N', 'NODENET-TEST');
  await ipt('-P', 'FORWARD', 'DROP');
  await ipt('-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP');
  await ipt('-A', 'INPUT', '-m', 'addrtype', '!', '--dst-type', 'LOCAL', '-j', 'NODENET-TEST');
  await ipt('-A', 'FORWARD', '-i', 'veth+', '!', '-o', 'eth0', '-g', 'NODENET-TEST');
  await ipt('-A', 'NODENET-TEST', '-m', 'state', '--state', 'RELATED,ESTABLISHED', '-j', 'ACCEPT');
  await ipt('-A', 'NODENET-TEST', '-j', 'RETURN');
  await ipt('-A', 'OUTPUT', '-o', 'lo');
  const filter = await netfilter.read({ netns: ns.path, table: 'filter' });

  t.equal(chain(filter, 'FORWARD').policy, 'DROP');
  t.equal(chain(filter, 'INPUT').policy, 'ACCEPT');
  t.ok(chain(filter, 'INPUT').builtin);
  const user = chain(filter, 'NODENET-TEST');
  t.notOk(user.builtin);
  t.equal(user.policy, null);
  t.equal(user.references, 2, 'two rules jump to the user chain');

  const [invalid, toChain] = chain(filter, 'INPUT').rules;
  t.same(invalid?.target, { kind: 'verdict', verdict: 'DROP' });
  t.match(optionsOf(invalid!, 'conntrack'), { state: { value: ['INVALID'], invert: false }, stateAlias: false });
  t.same(toChain?.target, { kind: 'jump', chain: 'NODENET-TEST', goto: false });
  t.match(optionsOf(toChain!, 'addrtype'), { destinationTypes: { value: ['LOCAL'], invert: true }, sourceTypes: null });

  const [fwd] = chain(filter, 'FORWARD').rules;
  t.same(fwd?.target, { kind: 'jump', chain: 'NODENET-TEST', goto: true });
  t.same(fwd?.inInterface, { value: 'veth+', invert: false });
  t.same(fwd?.outInterface, { value: 'eth0', invert: true });

  const [state, ret] = user.rules;
  t.equal(state?.matches[0]?.name, 'conntrack', 'iptables 1.8 writes -m state as conntrack');
  t.match(optionsOf(state!, 'conntrack'), { state: { value: ['RELATED', 'ESTABLISHED'] }, stateAlias: true });
  t.same(ret?.target, { kind: 'verdict', verdict: 'RETURN' });

  const [counting] = chain(filter, 'OUTPUT').rules;
  t.same(counting?.target, { kind: 'none' }, 'a rule without a target falls through');
});

t.test('counters follow real traffic', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv4', ['-A', 'OUTPUT', '-o', 'lo', '-p', 'icmp']);
  await ns.exec('ping', ['-c', '3', '-i', '0.2', '-q', '127.0.0.1']);
  const filter = await netfilter.read({ netns: ns.path, table: 'filter' });
  const [rule] = chain(filter, 'OUTPUT').rules;
  t.equal(rule?.counters.packets, 6n, '3 echo requests and 3 replies leave through lo');
  t.equal(rule?.counters.bytes, 6n * 84n);
  t.equal(chain(filter, 'OUTPUT').counters.packets, 6n, 'policy counter of OUTPUT');
});

t.test('CT --notrack and NOTRACK in raw', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv4', ['-t', 'raw', '-A', 'PREROUTING', '-d', '10.96.0.10', '-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'CT', '--notrack']);
  await iptables(ns, 'ipv4', ['-t', 'raw', '-A', 'OUTPUT', '-p', 'udp', '-m', 'udp', '--sport', '53', '-j', 'NOTRACK']);
  const raw = await netfilter.read({ netns: ns.path, table: 'raw' });
  const [notrack] = chain(raw, 'PREROUTING').rules;
  const [alias] = chain(raw, 'OUTPUT').rules;
  t.match(notrack?.target, { kind: 'extension', name: 'CT', revision: 2, options: { notrack: true, notrackAlias: false } });
  t.match(alias?.target, { kind: 'extension', name: 'CT', revision: 2, options: { notrack: true, notrackAlias: true } });
  t.match(optionsOf(alias!, 'udp'), { sourcePorts: { value: { from: 53, to: 53 } } });
});

t.test('IPv6: DNAT to [address]:port, addresses and MARK', async (t) => {
  const ns = await makeNetns(t);
  await iptables(ns, 'ipv6', ['-t', 'nat', '-A', 'PREROUTING', '-s', 'fd00:10:244::/56', '-d', '2001:db8::10', '-p', 'tcp', '-m', 'tcp',
    '--dport', '443', '-j', 'DNAT', '--to-destination', '[fd00:10:96::1]:8443']);
  await iptables(ns, 'ipv6', ['-t', 'nat', '-A', 'OUTPUT', '-j', 'MARK', '--or-mark', '0x4000']);
  const nat = await netfilter.read({ netns: ns.path, family: 'ipv6', table: 'nat' });
  t.equal(nat.family, 'ipv6');
  const [dnat] = chain(nat, 'PREROUTING').rules;
  t.same(dnat?.source, { value: 'fd00:10:244::/56', invert: false });
  t.same(dnat?.destination, { value: '2001:db8::10/128', invert: false });
  t.match(dnat?.target, { kind: 'extension', name: 'DNAT', options: { addresses: { from: 'fd00:10:96::1' }, ports: { from: 8443, to: 8443 } } });
  const [mark] = chain(nat, 'OUTPUT').rules;
  t.match(mark?.target, { kind: 'extension', name: 'MARK', revision: 2, options: { value: 0x4000, mask: 0x4000 } });
});
