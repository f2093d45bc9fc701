// Deleting conntrack entries through ctnetlink (no `conntrack` process).
//
// When a DNAT changes or goes, UDP flows keep their conntrack entry, and with it the old
// translation, for as long as packets keep coming (DNS clients retry on the same 5-tuple): their
// entries must be deleted for the new rule to take effect.
#pragma once

#include <cstdint>
#include <vector>

#include "xtables.h"

namespace nodenet {

struct ConntrackFilter {
  IpFamily family = IpFamily::kIPv4;
  uint8_t protocol = 17;              // IPPROTO_UDP
  std::vector<uint8_t> destination;   // original-direction destination, 4 or 16 bytes
  uint16_t port = 0;                  // original-direction destination port; 0 for any
};

// Deletes every entry whose original tuple matches; returns how many were deleted. Entries that
// vanish meanwhile are not errors. Throws KernelError.
size_t DeleteConntrack(const ConntrackFilter& filter);

}  // namespace nodenet
