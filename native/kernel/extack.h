// The kernel's extended-ack text from a netlink error message, for any netlink library (libnl's
// socket in netlink.cc, libmnl's in nftables.cc): neither libnl 3.7 nor libmnl parses it.
#pragma once

#include <linux/netlink.h>

#include <string>

namespace nodenet {

// NLMSGERR_ATTR_MSG of an NLMSG_ERROR message (the whole message, header included), or "" when the
// kernel sent none. Never reads past nlmsg_len.
std::string NetlinkExtackMessage(const nlmsghdr* error_message);

}  // namespace nodenet
