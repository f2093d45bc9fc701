// What the agent observes on the node itself, afresh at every reconcile: kube-proxy can be
// reconfigured, and the conntrack sysctl can be changed, while the agent runs.
import { links, sysctl } from '../../kernel/index.js';
import type { NodeFacts, ProxyMode } from '../../model/index.js';
import type { ProxyModeSetting } from './config.js';

/** kube-proxy in IPVS mode binds every Service address to this dummy link. */
export const IPVS_LINK = 'kube-ipvs0';
export const TCP_BE_LIBERAL = 'net.netfilter.nf_conntrack_tcp_be_liberal';

/**
 * The proxy mode (PROXY_MODE, or for auto: ipvs when the node has kube-ipvs0, else iptables —
 * nftables mode refuses the same fixes for the same reason) and the conntrack liberal setting
 * (null when unreadable, e.g. conntrack not loaded). Rejects with KernelError when links cannot
 * be listed.
 */
export async function observeNodeFacts(setting: ProxyModeSetting, netns: string | undefined): Promise<NodeFacts> {
  const where = netns === undefined ? {} : { netns };
  let proxyMode: ProxyMode;
  if (setting === 'auto') {
    const all = await links.list(where);
    proxyMode = all.some((l) => l.name === IPVS_LINK) ? 'ipvs' : 'iptables';
  } else {
    proxyMode = setting;
  }
  let tcpBeLiberal: boolean | null;
  try {
    const value = await sysctl.read(TCP_BE_LIBERAL, where);
    tcpBeLiberal = value === '1' ? true : value === '0' ? false : null;
  } catch {
    tcpBeLiberal = null;
  }
  return { proxyMode, tcpBeLiberal };
}
