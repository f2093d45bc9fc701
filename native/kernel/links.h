// Reading network links through libnl.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nodenet {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;        // IFLA_INFO_KIND ("bridge", "veth", "vxlan"); empty for lo and hardware
  std::string slave_kind;  // IFLA_INFO_SLAVE_KIND ("bridge" for a bridge port)
  unsigned mtu = 0;
  unsigned flags = 0;      // IFF_* as the kernel reports them, including IFF_LOWER_UP
  uint8_t operstate = 0;   // IF_OPER_*
  unsigned txqlen = 0;
  int master_index = 0;    // 0: no master
  int link_index = 0;      // IFLA_LINK: the peer or lower device, possibly in another netns
  int link_netnsid = -1;   // IFLA_LINK_NETNSID, -1 when absent
  std::string alias;       // IFLA_IFALIAS
  std::string address;     // link-layer address, lower-case hex with colons
};

// Every link of the calling thread's network namespace, in ifindex order. Throws KernelError.
std::vector<LinkInfo> ListLinks();

}  // namespace nodenet
