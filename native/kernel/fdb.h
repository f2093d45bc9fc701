// Bridge forwarding database entries (AF_BRIDGE neighbours: RTM_{NEW,DEL,GET}NEIGH, NDA_*), as
// `bridge fdb` reads and writes them, through raw rtnetlink: libnl 3.7 knows neither NDA_VNI nor
// NDA_PORT.
//
// On a VXLAN device an entry maps an inner MAC to the remote VTEP (NDA_DST) that receives it; the
// all-zero MAC is the default, and one all-zero entry per peer is how a unicast full mesh floods.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace nodenet {

struct FdbEntry {
  std::string mac;                // lower-case hex with colons
  int ifindex = 0;                // the device the entry is on (ndm_ifindex)
  std::string device;             // its name, "" when gone since the dump
  std::string dst;                // NDA_DST, "" when absent
  std::optional<uint32_t> vni;    // NDA_VNI: only when it differs from the device's own
  std::optional<uint16_t> port;   // NDA_PORT: only when it differs from the device's own
  std::optional<uint16_t> vlan;   // NDA_VLAN
  int via_index = 0;              // NDA_IFINDEX: the underlay device a VXLAN entry sends through
  std::string via;
  int master_index = 0;           // NDA_MASTER: the bridge whose own FDB holds the entry
  std::string master;
  uint16_t state = 0;             // NUD_*
  uint8_t flags = 0;              // NTF_*
};

// Every AF_BRIDGE neighbour of the calling thread's namespace, or only those on `device` when it is
// not empty (what `bridge fdb show [dev DEVICE]` lists), in the kernel's order. Throws KernelError.
std::vector<FdbEntry> ListFdb(const std::string& device);

struct FdbRequest {
  std::string device;
  uint8_t mac[6] = {};
  std::string dst;      // "" for none
  bool append = false;  // NLM_F_APPEND instead of NLM_F_REPLACE (AddFdb only)
};

// Adds a permanent (NUD_PERMANENT | NUD_NOARP) NTF_SELF entry on the device. With append
// (NLM_F_APPEND) a VXLAN device adds dst to the destinations of an all-zero or multicast MAC
// (`bridge fdb append`); without it (NLM_F_REPLACE) a unicast MAC's entry becomes this one. The
// kernel ignores append for an existing unicast MAC and refuses a replace of an existing all-zero
// or multicast one (EOPNOTSUPP). Throws KernelError.
void AddFdb(const FdbRequest& request);

// Removes the NTF_SELF entry for the MAC (with dst: only that destination). ENOENT when the device
// has no entry for the MAC. Throws KernelError.
void RemoveFdb(const FdbRequest& request);

}  // namespace nodenet
