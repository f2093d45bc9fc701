#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cstring>
#include <memory>

#include "error.h"
#include "fd.h"
#include "netlink.h"

namespace nodenet {

namespace {

std::string AddressText(int family, const void* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes, text, sizeof text) == nullptr) return {};
  return text;
}

// An address attribute of the family's exact length; anything else is not one we can print.
std::string AddressAttr(int family, const nlattr* attr) {
  if (attr == nullptr) return {};
  size_t want = family == AF_INET ? 4 : 16;
  if (static_cast<size_t>(nla_len(attr)) != want) return {};
  return AddressText(family, nla_data(attr));
}

struct RouteReply {
  RouteLookup* out;
  bool seen = false;
};

int OnRoute(nl_msg* msg, void* arg) {
  auto* reply = static_cast<RouteReply*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  if (hdr->nlmsg_type != RTM_NEWROUTE || reply->seen) return NL_SKIP;
  nlattr* tb[RTA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) return NL_SKIP;
  const auto* rtm = static_cast<const rtmsg*>(nlmsg_data(hdr));
  RouteLookup& r = *reply->out;
  r.type = rtm->rtm_type;
  r.protocol = rtm->rtm_protocol;
  r.scope = rtm->rtm_scope;
  r.flags = rtm->rtm_flags;
  r.table = tb[RTA_TABLE] && nla_len(tb[RTA_TABLE]) >= 4 ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
  if (tb[RTA_OIF] && nla_len(tb[RTA_OIF]) >= 4) r.oif = static_cast<int>(nla_get_u32(tb[RTA_OIF]));
  if (r.oif > 0) {
    // The socket and this thread are in the same namespace, so the name is that namespace's. A
    // device removed since the lookup leaves the name empty rather than failing the lookup.
    char name[IF_NAMESIZE] = {};
    if (if_indextoname(static_cast<unsigned>(r.oif), name) != nullptr) r.oif_name = name;
  }
  r.prefsrc = AddressAttr(r.family, tb[RTA_PREFSRC]);
  if (tb[RTA_GATEWAY]) {
    r.gateway = AddressAttr(r.family, tb[RTA_GATEWAY]);
    if (!r.gateway.empty()) r.gateway_family = r.family;
  } else if (tb[RTA_VIA] && static_cast<size_t>(nla_len(tb[RTA_VIA])) >= sizeof(rtvia)) {
    // IPv4 routes through an IPv6 next hop (RFC 5549) carry it as RTA_VIA: family, then address.
    const auto* via = static_cast<const rtvia*>(nla_data(tb[RTA_VIA]));
    size_t len = static_cast<size_t>(nla_len(tb[RTA_VIA])) - sizeof(rtvia);
    if ((via->rtvia_family == AF_INET && len >= 4) || (via->rtvia_family == AF_INET6 && len >= 16)) {
      r.gateway = AddressText(via->rtvia_family, via->rtvia_addr);
      r.gateway_family = via->rtvia_family;
    }
  }
  reply->seen = true;
  return NL_OK;
}

struct NsidReply {
  int nsid = kNetnsIdNotAssigned;
  bool seen = false;
};

int OnNsid(nl_msg* msg, void* arg) {
  auto* reply = static_cast<NsidReply*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  if (hdr->nlmsg_type != RTM_NEWNSID || reply->seen) return NL_SKIP;
  nlattr* tb[NETNSA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) < 0) return NL_SKIP;
  if (tb[NETNSA_NSID] && nla_len(tb[NETNSA_NSID]) >= 4) reply->nsid = static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID]));
  reply->seen = true;
  return NL_OK;
}

// Sends one request and reads its one reply. Auto-ack is off: a GET is answered by its reply or by
// an error, and waiting for an ACK as well would only add a round trip.
void Exchange(NlSocket& sock, nl_msg* msg, nl_recvmsg_msg_cb_t on_reply, void* arg) {
  nl_socket_disable_auto_ack(sock.get());
  int rc = nl_send_auto(sock.get(), msg);
  if (rc < 0) sock.Fail(rc);
  nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, on_reply, arg);
  rc = nl_recvmsgs_default(sock.get());
  if (rc < 0) sock.Fail(rc);
}

}  // namespace

RouteLookup RouteGet(const std::string& destination) {
  const std::string object = "route to " + destination;
  RouteLookup result;
  unsigned char addr[16] = {};
  if (inet_pton(AF_INET, destination.c_str(), addr) == 1) {
    result.family = AF_INET;
  } else if (inet_pton(AF_INET6, destination.c_str(), addr) == 1) {
    result.family = AF_INET6;
  } else {
    throw KernelError(EINVAL, object, "not an IPv4 or IPv6 address");
  }
  const int addr_len = result.family == AF_INET ? 4 : 16;
  // Report the address in its canonical spelling (an IPv6 address has many).
  result.destination = AddressText(result.family, addr);

  NlRouteSocket sock(object);
  NlMessage msg(nlmsg_alloc_simple(RTM_GETROUTE, 0));
  if (!msg) throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
  rtmsg rtm{};
  rtm.rtm_family = static_cast<unsigned char>(result.family);
  rtm.rtm_dst_len = static_cast<unsigned char>(addr_len * 8);
  // Without RTM_F_LOOKUP_TABLE the kernel reports the table as main whatever rule matched.
  rtm.rtm_flags = RTM_F_LOOKUP_TABLE;
  if (nlmsg_append(msg.get(), &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 || nla_put(msg.get(), RTA_DST, addr_len, addr) < 0) {
    throw KernelError(EMSGSIZE, object, "the request does not fit in a netlink message");
  }
  RouteReply reply{&result};
  Exchange(sock, msg.get(), OnRoute, &reply);
  if (!reply.seen) throw KernelError(EPROTO, object, "the kernel answered the route lookup with no route");
  return result;
}

int NetnsId(const std::string& path) {
  const std::string object = "netns " + path;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    throw KernelError(err, object, "cannot open the namespace file: " + ErrnoText(err));
  }

  NlRouteSocket sock(object);
  NlMessage msg(nlmsg_alloc_simple(RTM_GETNSID, 0));
  if (!msg) throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
  rtgenmsg gen{};
  gen.rtgen_family = AF_UNSPEC;
  // RTM_GETNSID only looks the id up (peernet2id); it is RTM_NEWNSID that would assign one.
  if (nlmsg_append(msg.get(), &gen, sizeof gen, NLMSG_ALIGNTO) < 0 ||
      nla_put_u32(msg.get(), NETNSA_FD, static_cast<uint32_t>(fd.get())) < 0) {
    throw KernelError(EMSGSIZE, object, "the request does not fit in a netlink message");
  }
  NsidReply reply;
  Exchange(sock, msg.get(), OnNsid, &reply);
  if (!reply.seen) throw KernelError(EPROTO, object, "the kernel answered RTM_GETNSID with no id");
  return reply.nsid;
}

}  // namespace nodenet
