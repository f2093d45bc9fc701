// Golden, nftables: for each fix and family, the model's rules written through the nftables backend
// are exactly what `nft list table <family> nodenet` prints below (each line checked against the
// iptables line the legacy golden, test/kernel/95, holds for the same rule), and `nft -j` (the
// witness in JSON) holds one rule per rule the model asked for, in order, with the model's comment.
import t from 'tap';

import { netfilter } from '../../lib/kernel/index.js';
import type { IpFamily } from '../../lib/kernel/netfilter/index.js';
import { applyOrder, parseFixesConfig, render, type ModelInput } from '../../lib/model/index.js';
import { makeNetns } from '../helpers/netns.js';
import { nftTableJson } from '../helpers/witness.js';

const FIXES: Record<string, Record<string, string>> = {
  'drop-invalid': { RULE_DROP_INVALID_INPUT_ENABLE: 'true' },
  'external-cluster': { RULE_DROP_INVALID_INPUT_ENABLE: 'false', RULE_EXTERNAL_CLUSTER_ENABLE: 'true', RULE_EXTERNAL_IPS_ENABLE: 'true' },
  'notrack-dns': { RULE_DROP_INVALID_INPUT_ENABLE: 'false', RULE_NOT_TRACK_DNS_ENABLE: 'true' },
};

function input(env: Record<string, string>): ModelInput {
  const parsed = parseFixesConfig({ ...env, NET_STACK: 'ipv4,ipv6' });
  if ('errors' in parsed) throw new Error(parsed.errors.join('; '));
  return {
    config: parsed.config,
    facts: { proxyMode: 'ipvs', tcpBeLiberal: false },
    services: [
      { metadata: { namespace: 'kube-system', name: 'kube-dns' }, spec: { clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:10:96::a'], ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] } },
      {
        metadata: { namespace: 'shop', name: 'web' },
        spec: {
          type: 'LoadBalancer',
          clusterIP: '10.96.0.20',
          clusterIPs: ['10.96.0.20', 'fd00:10:96::20'],
          ipFamilies: ['IPv4', 'IPv6'],
          externalIPs: ['198.51.100.7'],
          ports: [{ name: 'http', protocol: 'TCP', port: 80 }, { name: 'dns', protocol: 'UDP', port: 5353 }],
        },
        status: { loadBalancer: { ingress: [{ ip: '203.0.113.10' }, { ip: '2001:db8::10' }] } },
      },
    ],
    dnsEndpointSlices: [
      { metadata: { namespace: 'kube-system', name: 'a', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv4', endpoints: [{ addresses: ['10.244.1.5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
      { metadata: { namespace: 'kube-system', name: 'b', labels: { 'kubernetes.io/service-name': 'kube-dns' } }, addressType: 'IPv6', endpoints: [{ addresses: ['fd00:10:244:1::5'] }], ports: [{ name: 'dns', protocol: 'UDP', port: 53 }] },
    ],
    node: { metadata: { name: 'node-1' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] } },
  };
}

const GOLDEN: Record<string, Record<'ip' | 'ip6', string>> = {
  'drop-invalid': {
    ip: `table ip nodenet {
  chain filter-input {
    type filter hook input priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DROP-INVALID comment "nodenet drop-invalid: no RST for out-of-window packets of pods"
  }

  chain filter-NODENET-DROP-INVALID {
    ct state invalid counter packets 0 bytes 0 drop comment "nodenet: conntrack INVALID, the node would answer with a RST"
  }
}
`,
    ip6: `table ip6 nodenet {
  chain filter-input {
    type filter hook input priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DROP-INVALID comment "nodenet drop-invalid: no RST for out-of-window packets of pods"
  }

  chain filter-NODENET-DROP-INVALID {
    ct state invalid counter packets 0 bytes 0 drop comment "nodenet: conntrack INVALID, the node would answer with a RST"
  }
}
`,
  },
  'external-cluster': {
    ip: `table ip nodenet {
  chain nat-prerouting {
    type nat hook prerouting priority dstnat - 10; policy accept;
    counter packets 0 bytes 0 jump nat-NODENET-EXTERNAL-PODS comment "nodenet external-cluster: pods reach external IPs through cluster IPs"
  }

  chain nat-output {
    type nat hook output priority -110; policy accept;
    fib saddr type local counter packets 0 bytes 0 jump nat-NODENET-EXTERNAL-HOST comment "nodenet external-cluster: the node reaches external IPs through cluster IPs"
  }

  chain nat-NODENET-EXTERNAL-HOST {
    ip daddr 198.51.100.7 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:http"
    ip daddr 198.51.100.7 tcp dport 80 counter packets 0 bytes 0 dnat to 10.96.0.20:80 comment "shop/web:http"
    ip daddr 198.51.100.7 udp dport 5353 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:dns"
    ip daddr 198.51.100.7 udp dport 5353 counter packets 0 bytes 0 dnat to 10.96.0.20:5353 comment "shop/web:dns"
    ip daddr 203.0.113.10 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:http"
    ip daddr 203.0.113.10 tcp dport 80 counter packets 0 bytes 0 dnat to 10.96.0.20:80 comment "shop/web:http"
    ip daddr 203.0.113.10 udp dport 5353 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:dns"
    ip daddr 203.0.113.10 udp dport 5353 counter packets 0 bytes 0 dnat to 10.96.0.20:5353 comment "shop/web:dns"
  }

  chain nat-NODENET-EXTERNAL-PODS {
    ip saddr 10.244.1.0/24 ip daddr 198.51.100.7 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:http"
    ip saddr 10.244.1.0/24 ip daddr 198.51.100.7 tcp dport 80 counter packets 0 bytes 0 dnat to 10.96.0.20:80 comment "shop/web:http"
    ip saddr 10.244.1.0/24 ip daddr 198.51.100.7 udp dport 5353 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:dns"
    ip saddr 10.244.1.0/24 ip daddr 198.51.100.7 udp dport 5353 counter packets 0 bytes 0 dnat to 10.96.0.20:5353 comment "shop/web:dns"
    ip saddr 10.244.1.0/24 ip daddr 203.0.113.10 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:http"
    ip saddr 10.244.1.0/24 ip daddr 203.0.113.10 tcp dport 80 counter packets 0 bytes 0 dnat to 10.96.0.20:80 comment "shop/web:http"
    ip saddr 10.244.1.0/24 ip daddr 203.0.113.10 udp dport 5353 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:dns"
    ip saddr 10.244.1.0/24 ip daddr 203.0.113.10 udp dport 5353 counter packets 0 bytes 0 dnat to 10.96.0.20:5353 comment "shop/web:dns"
  }
}
`,
    ip6: `table ip6 nodenet {
  chain nat-prerouting {
    type nat hook prerouting priority dstnat - 10; policy accept;
    counter packets 0 bytes 0 jump nat-NODENET-EXTERNAL-PODS comment "nodenet external-cluster: pods reach external IPs through cluster IPs"
  }

  chain nat-output {
    type nat hook output priority -110; policy accept;
    fib saddr type local counter packets 0 bytes 0 jump nat-NODENET-EXTERNAL-HOST comment "nodenet external-cluster: the node reaches external IPs through cluster IPs"
  }

  chain nat-NODENET-EXTERNAL-HOST {
    ip6 daddr 2001:db8::10 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:http"
    ip6 daddr 2001:db8::10 tcp dport 80 counter packets 0 bytes 0 dnat to [fd00:10:96::20]:80 comment "shop/web:http"
    ip6 daddr 2001:db8::10 udp dport 5353 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:dns"
    ip6 daddr 2001:db8::10 udp dport 5353 counter packets 0 bytes 0 dnat to [fd00:10:96::20]:5353 comment "shop/web:dns"
  }

  chain nat-NODENET-EXTERNAL-PODS {
    ip6 saddr fd00:10:244:1::/64 ip6 daddr 2001:db8::10 tcp dport 80 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:http"
    ip6 saddr fd00:10:244:1::/64 ip6 daddr 2001:db8::10 tcp dport 80 counter packets 0 bytes 0 dnat to [fd00:10:96::20]:80 comment "shop/web:http"
    ip6 saddr fd00:10:244:1::/64 ip6 daddr 2001:db8::10 udp dport 5353 counter packets 0 bytes 0 meta mark set meta mark | 0x00004000 comment "shop/web:dns"
    ip6 saddr fd00:10:244:1::/64 ip6 daddr 2001:db8::10 udp dport 5353 counter packets 0 bytes 0 dnat to [fd00:10:96::20]:5353 comment "shop/web:dns"
  }
}
`,
  },
  'notrack-dns': {
    ip: `table ip nodenet {
  chain filter-input {
    type filter hook input priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DNS-ACCEPT comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked"
  }

  chain filter-forward {
    type filter hook forward priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DNS-ACCEPT comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked"
  }

  chain filter-output {
    type filter hook output priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DNS-ACCEPT comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked"
  }

  chain filter-NODENET-DNS-ACCEPT {
    ct state untracked udp dport 53 counter packets 0 bytes 0 accept comment "nodenet: DNS queries nodenet took out of conntrack"
    ct state untracked udp sport 53 counter packets 0 bytes 0 accept comment "nodenet: DNS replies nodenet took out of conntrack"
  }

  chain raw-prerouting {
    type filter hook prerouting priority raw - 10; policy accept;
    counter packets 0 bytes 0 jump raw-NODENET-DNS-NOTRACK comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack"
  }

  chain raw-output {
    type filter hook output priority raw - 10; policy accept;
    counter packets 0 bytes 0 jump raw-NODENET-DNS-NOTRACK comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack"
  }

  chain raw-NODENET-DNS-NOTRACK {
    ip daddr 10.96.0.10 udp dport 53 counter packets 0 bytes 0 notrack comment "kube-system/kube-dns cluster IP"
    ip daddr 10.244.1.5 udp dport 53 counter packets 0 bytes 0 notrack comment "kube-system/kube-dns endpoint"
    ip saddr 10.244.1.5 udp sport 53 counter packets 0 bytes 0 notrack comment "kube-system/kube-dns endpoint reply"
  }
}
`,
    ip6: `table ip6 nodenet {
  chain filter-input {
    type filter hook input priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DNS-ACCEPT comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked"
  }

  chain filter-forward {
    type filter hook forward priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DNS-ACCEPT comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked"
  }

  chain filter-output {
    type filter hook output priority filter - 10; policy accept;
    counter packets 0 bytes 0 jump filter-NODENET-DNS-ACCEPT comment "nodenet notrack-dns: accept the DNS packets raw NOTRACK untracked"
  }

  chain filter-NODENET-DNS-ACCEPT {
    ct state untracked udp dport 53 counter packets 0 bytes 0 accept comment "nodenet: DNS queries nodenet took out of conntrack"
    ct state untracked udp sport 53 counter packets 0 bytes 0 accept comment "nodenet: DNS replies nodenet took out of conntrack"
  }

  chain raw-prerouting {
    type filter hook prerouting priority raw - 10; policy accept;
    counter packets 0 bytes 0 jump raw-NODENET-DNS-NOTRACK comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack"
  }

  chain raw-output {
    type filter hook output priority raw - 10; policy accept;
    counter packets 0 bytes 0 jump raw-NODENET-DNS-NOTRACK comment "nodenet notrack-dns: DNS to and from the cluster DNS skips conntrack"
  }

  chain raw-NODENET-DNS-NOTRACK {
    ip6 daddr fd00:10:96::a udp dport 53 counter packets 0 bytes 0 notrack comment "kube-system/kube-dns cluster IP"
    ip6 daddr fd00:10:244:1::5 udp dport 53 counter packets 0 bytes 0 notrack comment "kube-system/kube-dns endpoint"
    ip6 saddr fd00:10:244:1::5 udp sport 53 counter packets 0 bytes 0 notrack comment "kube-system/kube-dns endpoint reply"
  }
}
`,
  },
};

for (const [fix, env] of Object.entries(FIXES)) {
  t.test(`${fix}: nft lists exactly the model's rules, in both families`, async (t) => {
    const ns = await makeNetns(t);
    const desired = render(input(env));
    for (const state of applyOrder(desired)) await netfilter.nftBackend.apply(state, { netns: ns.path });
    for (const [family, nft] of [['ipv4', 'ip'], ['ipv6', 'ip6']] as Array<[IpFamily, 'ip' | 'ip6']>) {
      const text = (await ns.exec('nft', ['list', 'table', nft, 'nodenet'])).replace(/\t/g, '  ');
      t.equal(text, GOLDEN[fix]![nft], `nft list table ${nft} nodenet`);

      // The JSON witness: per chain, one rule per model rule, in order, with the model's comment.
      const json = await nftTableJson(ns, nft, 'nodenet');
      const rules = (json?.nftables ?? []).flatMap((x) => (x.rule ? [x.rule] : []));
      for (const state of desired.tables.filter((s) => s.family === family)) {
        for (const chain of state.chains) {
          const got = rules.filter((r) => r.chain === `${state.table}-${chain.name}`).map((r) => r.comment ?? null);
          const wanted = chain.rules.map((r) => ((r.matches ?? []).find((m) => m.name === 'comment')?.options as { comment: string } | undefined)?.comment ?? null);
          t.same(got, wanted, `${nft} ${state.table}-${chain.name}: the model's rules, in order`);
        }
        for (const jump of state.jumps) {
          const target = jump.rule.target.kind === 'jump' ? jump.rule.target.chain : '';
          const base = `${state.table}-${jump.chain.toLowerCase()}`;
          t.ok(
            rules.some((r) => r.chain === base && r.expr.some((e) => (e.jump as { target?: string } | undefined)?.target === `${state.table}-${target}`)),
            `${nft} ${base} jumps to ${state.table}-${target}`,
          );
        }
      }
    }
  });
}
