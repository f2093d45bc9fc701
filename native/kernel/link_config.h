// Creating, changing and removing bridges and VXLAN devices, and reading their kind-specific
// configuration back, through raw rtnetlink (RTM_{NEW,DEL,GET}LINK).
//
// Raw messages rather than libnl's link objects: libnl 3.7 knows no IFLA_BR_* attribute at all, and
// one path for writing and reading both kinds keeps what is set and what is read back in step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nodenet {

// IFLA_BR_* that nodenet sets. An absent field is not sent, so the kernel keeps (or defaults) it.
struct BridgeConfig {
  std::optional<bool> stp;                // IFLA_BR_STP_STATE
  std::optional<bool> nf_call_iptables;   // IFLA_BR_NF_CALL_IPTABLES (br_netfilter)
  std::optional<bool> nf_call_ip6tables;  // IFLA_BR_NF_CALL_IP6TABLES
};

// IFLA_VXLAN_* that nodenet sets; absent fields are not sent. Addresses are text (inet_pton).
struct VxlanConfig {
  std::optional<uint32_t> vni;
  std::optional<uint16_t> port;          // destination UDP port; the kernel's own default is 8472
  std::optional<uint16_t> port_min;      // IFLA_VXLAN_PORT_RANGE, sent when both are set
  std::optional<uint16_t> port_max;
  std::string local;                     // IFLA_VXLAN_LOCAL or LOCAL6 by family; "" absent
  std::string group;                     // IFLA_VXLAN_GROUP or GROUP6: remote unicast or multicast
  std::string underlay;                  // device name, sent as IFLA_VXLAN_LINK; "" absent
  std::optional<bool> learning;
  std::optional<uint8_t> ttl;            // 0: the route's hop limit
  std::optional<uint8_t> tos;            // 1: inherit the inner packet's
  std::optional<bool> udp_csum;
};

// One RTM_NEWLINK. For CreateLink kind is "bridge" or "vxlan" and the matching config (if any) is
// its IFLA_INFO_DATA; for UpdateLink a config present is a change of that kind's attributes.
struct LinkRequest {
  std::string name;
  std::string kind;
  std::optional<BridgeConfig> bridge;
  std::optional<VxlanConfig> vxlan;
  std::optional<uint32_t> mtu;
  std::optional<std::string> alias;   // "" removes it
  std::optional<std::string> master;  // "" releases the link from its master
  std::optional<bool> up;
  std::vector<uint8_t> address;       // IFLA_ADDRESS; empty: the kernel's choice
};

// Creates the link (NLM_F_EXCL: EEXIST when the name is taken) with everything requested. The
// kernel ignores IFLA_IFALIAS on creation, so an alias is set by a second message; if that fails
// the new link is removed again and the error thrown. Throws KernelError.
void CreateLink(const LinkRequest& request);

// Changes only what the request carries on the existing link of that name (ENODEV when missing).
// Throws KernelError.
void UpdateLink(const LinkRequest& request);

// Deletes the link (ENODEV when missing). Throws KernelError.
void RemoveLink(const std::string& name);

struct BridgeDetails {
  bool stp = false;
  // Absent when the kernel does not report them (built without CONFIG_BRIDGE_NETFILTER).
  std::optional<bool> nf_call_iptables;
  std::optional<bool> nf_call_ip6tables;
};

struct VxlanDetails {
  uint32_t vni = 0;
  uint16_t port = 0;
  uint16_t port_min = 0;  // 0..0: the namespace's local port range
  uint16_t port_max = 0;
  std::string local;      // "" when unset
  std::string group;      // "" when unset
  int underlay_index = 0; // 0 when unset
  bool learning = false;
  uint8_t ttl = 0;
  uint8_t tos = 0;
  bool udp_csum = false;
};

// The kind-specific configuration of one link: at most one of bridge and vxlan is set.
struct LinkDetails {
  int index = 0;
  std::string name;
  std::optional<BridgeDetails> bridge;
  std::optional<VxlanDetails> vxlan;
};

// Every bridge and VXLAN device of the calling thread's namespace with its IFLA_INFO_DATA decoded.
// Throws KernelError.
std::vector<LinkDetails> ListLinkDetails();

}  // namespace nodenet
