// The numbers of the nf_tables netlink API (linux/netfilter/nf_tables.h, linux/netfilter.h,
// linux/rtnetlink.h) that nodenet writes and reads. They are kernel ABI: they never change.

export const NFPROTO = { INET: 1, IPV4: 2, ARP: 3, NETDEV: 5, BRIDGE: 7, IPV6: 10 } as const;

/** enum nf_inet_hooks. */
export const HOOK = { PREROUTING: 0, INPUT: 1, FORWARD: 2, OUTPUT: 3, POSTROUTING: 4 } as const;

/** NF_DROP / NF_ACCEPT, as a base chain's policy and as verdict codes. */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;

/** enum nft_verdicts (the negative codes), beside NF_ACCEPT/NF_DROP. */
export const VERDICT = { CONTINUE: -1, BREAK: -2, JUMP: -3, GOTO: -4, RETURN: -5 } as const;

/**
 * enum nft_registers: 0 holds the verdict; 1..4 are the 16-byte data registers. The kernel dumps a
 * register in the numbering it was given in (NFT_REG_1 stays 1, NFT_REG32_00 stays 8), so using the
 * 16-byte ones, as nft does for what nodenet writes, makes a dump echo the same numbers.
 */
export const REG = { VERDICT: 0, R1: 1, R2: 2, R3: 3, R4: 4 } as const;

/** enum nft_payload_bases. */
export const PAYLOAD_BASE = { LL: 0, NETWORK: 1, TRANSPORT: 2, INNER: 3 } as const;

/** enum nft_cmp_ops. */
export const CMP = { EQ: 0, NEQ: 1, LT: 2, LTE: 3, GT: 4, GTE: 5 } as const;

/** enum nft_range_ops. */
export const RANGE = { EQ: 0, NEQ: 1 } as const;

/** enum nft_bitwise_ops: BOOL is (reg & mask) ^ xor. */
export const BITWISE = { BOOL: 0, LSHIFT: 1, RSHIFT: 2 } as const;

/** enum nft_meta_keys (the ones nodenet uses or names). */
export const META = {
  LEN: 0,
  PROTOCOL: 1,
  PRIORITY: 2,
  MARK: 3,
  IIF: 4,
  OIF: 5,
  IIFNAME: 6,
  OIFNAME: 7,
  IIFTYPE: 8,
  OIFTYPE: 9,
  SKUID: 10,
  SKGID: 11,
  NFTRACE: 12,
  RTCLASSID: 13,
  SECMARK: 14,
  NFPROTO: 15,
  L4PROTO: 16,
} as const;

/** enum nft_ct_keys (the ones nodenet names). */
export const CT_KEY = { STATE: 0, DIRECTION: 1, STATUS: 2, MARK: 3 } as const;

/** ct state bits: NF_CT_STATE_BIT(ctinfo) and the two special ones. */
export const CT_STATE = { INVALID: 1, ESTABLISHED: 2, RELATED: 4, NEW: 8, UNTRACKED: 64 } as const;

/** enum nft_fib_result and enum nft_fib_flags. */
export const FIB_RESULT = { UNSPEC: 0, OIF: 1, OIFNAME: 2, ADDRTYPE: 3 } as const;
export const FIB_FLAG = { SADDR: 1, DADDR: 2, MARK: 4, IIF: 8, OIF: 16, PRESENT: 32 } as const;

/** enum nft_nat_types. */
export const NAT_TYPE = { SNAT: 0, DNAT: 1 } as const;

/** NF_NAT_RANGE_* flags. */
export const NAT_FLAG = { MAP_IPS: 0x1, PROTO_SPECIFIED: 0x2, PROTO_RANDOM: 0x4, PERSISTENT: 0x8, PROTO_RANDOM_FULLY: 0x10, PROTO_OFFSET: 0x20 } as const;

/** enum rtn_type, the values `fib ... type` yields, in the order xt_addrtype's bits follow. */
export const RTN_TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'] as const;

/** NFTNL_UDATA_RULE_COMMENT: the TLV type nft keeps a rule's comment under. */
export const UDATA_RULE_COMMENT = 0;

/** NFT_USERDATA_MAXLEN: the most NFTA_RULE_USERDATA bytes the kernel keeps. */
export const USERDATA_MAX = 256;

/** IFNAMSIZ: meta iifname/oifname load this many bytes. */
export const IFNAMSIZ = 16;
