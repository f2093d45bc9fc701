// The model's inputs and outputs: plain data. The model turns what the cluster declares (and what
// the agent observed on the node) into the complete netfilter state nodenet wants, for each family
// and table, plus what it refused and why. No I/O here.
import type { IpFamily, TableState } from '../kernel/netfilter/index.js';

export type ProxyMode = 'ipvs' | 'iptables' | 'nftables';

/** The node fixes' configuration (network-node-manager's variables, validated by the agent). */
export interface FixesConfig {
  /** RULE_DROP_INVALID_INPUT_ENABLE (default true). */
  dropInvalidInput: boolean;
  /** RULE_EXTERNAL_CLUSTER_ENABLE (default false). */
  externalCluster: boolean;
  /** Also DNAT spec.externalIPs (CVE-2020-8554: anyone who can create a Service can claim any IP). */
  externalIPs: boolean;
  /** RULE_NOT_TRACK_DNS_ENABLE (default false). */
  notrackDns: boolean;
  /** RULE_NOT_TRACK_DNS_SERVICES: namespace/name of the DNS Services (default kube-system/kube-dns). */
  dnsServices: Array<{ namespace: string; name: string }>;
  /** NET_STACK: the families nodenet writes rules for. */
  families: IpFamily[];
  /** POD_CIDR_IPV4 / POD_CIDR_IPV6 when set; otherwise the Node's spec.podCIDRs are used. */
  podCidrs: Partial<Record<IpFamily, string[]>>;
  /** kube-proxy's masquerade bit (default 14, i.e. mark 0x4000). */
  masqueradeBit: number;
}

/** What the agent observed on the node itself. */
export interface NodeFacts {
  /** PROXY_MODE, or what `auto` detected (a kube-ipvs0 link means IPVS). */
  proxyMode: ProxyMode;
  /** net.netfilter.nf_conntrack_tcp_be_liberal, when readable. */
  tcpBeLiberal: boolean | null;
}

/** The parts of a Service the model reads (core/v1 Service, as the API server serves it). */
export interface ServiceInput {
  metadata: { namespace: string; name: string; uid?: string };
  spec: {
    type?: string;
    clusterIP?: string;
    clusterIPs?: string[];
    ipFamilies?: string[];
    externalIPs?: string[];
    loadBalancerSourceRanges?: string[];
    ports?: Array<{ name?: string; protocol?: string; port: number }>;
  };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string; ipMode?: string }> } };
}

/** The parts of this Node the model reads. */
export interface NodeInput {
  metadata: { name: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
}

/** The parts of a discovery/v1 EndpointSlice the model reads (only the DNS Services' slices). */
export interface EndpointSliceInput {
  metadata: { namespace: string; name: string; labels?: Record<string, string> };
  addressType: string;
  endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null } }>;
  ports?: Array<{ name?: string | null; protocol?: string | null; port?: number | null }> | null;
}

export interface ModelInput {
  config: FixesConfig;
  facts: NodeFacts;
  /** Every Service in the cluster. */
  services: ServiceInput[];
  /** The EndpointSlices of the DNS Services (label kubernetes.io/service-name). */
  dnsEndpointSlices: EndpointSliceInput[];
  /** This node, when known. */
  node: NodeInput | null;
}

/** Something the model refused or noticed, for a log line, an Event or a metric. */
export interface Finding {
  severity: 'warning' | 'info';
  /** Which fix (or subsystem) it concerns. */
  fix: 'drop-invalid' | 'external-cluster' | 'notrack-dns' | 'config' | 'shaping';
  /** A stable machine-readable reason ("NotIPVSMode", "NoPodCIDR", "HostnameOnlyIngress", ...). */
  reason: string;
  message: string;
  /** The Service it concerns, for a Warning Event on that Service. */
  service?: { namespace: string; name: string };
  /** The Pod it concerns (shaping), for an Event on that Pod. */
  pod?: { namespace: string; name: string };
}

export interface DesiredState {
  /** One entry per family and table nodenet manages (filter, nat, raw), including empty ones, so
   * that turning a fix off removes what it left. */
  tables: TableState[];
  findings: Finding[];
}
