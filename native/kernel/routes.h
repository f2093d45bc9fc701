// Route lookups and namespace ids through raw rtnetlink (RTM_GETROUTE, RTM_GETNSID).
//
// These answer "where does the kernel send this address?" and "which id does this namespace have
// here?", the two questions that lead from a pod IP to the pod's host-side veth and namespace. Both
// only read: neither creates a route cache entry one could observe nor assigns a namespace id.
#pragma once

#include <cstdint>
#include <string>

namespace nodenet {

struct RouteLookup {
  int family = 0;            // AF_INET or AF_INET6
  std::string destination;   // the address asked about, as inet_ntop prints it
  int oif = 0;               // RTA_OIF, 0 when the route has no device (unreachable, prohibit, ...)
  std::string oif_name;      // the name of oif in the looked-up namespace; empty when gone or none
  std::string gateway;       // RTA_GATEWAY, or RTA_VIA's address; empty for a directly reachable one
  int gateway_family = 0;    // family of gateway (RTA_VIA may name an IPv6 next hop for IPv4)
  std::string prefsrc;       // RTA_PREFSRC, empty when absent
  uint32_t table = 0;        // RTA_TABLE (falls back to rtm_table)
  uint8_t type = 0;          // RTN_*
  uint8_t protocol = 0;      // RTPROT_*
  uint8_t scope = 0;         // RT_SCOPE_*
  uint32_t flags = 0;        // rtm_flags as returned (RTM_F_*, RTNH_F_*)
};

// The kernel's route lookup for one address in the calling thread's namespace, as `ip route get
// ADDRESS` asks it: RTM_GETROUTE with RTM_F_LOOKUP_TABLE so the answer names the table that
// matched. Throws KernelError: EINVAL for a string that is not an address, ENETUNREACH (or
// EHOSTUNREACH, EACCES) when no route leads there.
RouteLookup RouteGet(const std::string& destination);

// NETNSA_NSID_NOT_ASSIGNED.
constexpr int kNetnsIdNotAssigned = -1;

// The id that the namespace at path has in the calling thread's namespace (RTM_GETNSID with
// NETNSA_FD), or kNetnsIdNotAssigned. Never assigns one. Throws KernelError (ENOENT for a missing
// path, EINVAL for a file that is not a network namespace).
int NetnsId(const std::string& path);

}  // namespace nodenet
