#include "fdb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <map>
#include <memory>

#include "error.h"
#include "mac.h"
#include "netlink.h"
#include "qdiscs.h"

namespace nodenet {

namespace {

std::string RequestObject(const FdbRequest& r) {
  std::string what = "fdb " + MacText(r.mac, sizeof r.mac);
  if (!r.dst.empty()) what += " dst " + r.dst;
  return what + " on dev " + r.device;
}

// Names of the ifindexes a dump mentions, each looked up once; "" for one removed since.
class IndexNames {
 public:
  const std::string& operator()(int index) {
    auto [it, inserted] = names_.try_emplace(index);
    if (inserted && index > 0) {
      char name[IF_NAMESIZE] = {};
      if (if_indextoname(static_cast<unsigned>(index), name) != nullptr) it->second = name;
    }
    return it->second;
  }

 private:
  std::map<int, std::string> names_;
};

struct DumpState {
  int ifindex;  // 0: all
  std::vector<FdbEntry>* out;
};

int OnNeighbour(nl_msg* msg, void* arg) {
  auto* state = static_cast<DumpState*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  if (hdr->nlmsg_type != RTM_NEWNEIGH) return NL_SKIP;
  const auto* ndm = static_cast<const ndmsg*>(nlmsg_data(hdr));
  if (ndm->ndm_family != AF_BRIDGE || (state->ifindex != 0 && ndm->ndm_ifindex != state->ifindex)) return NL_SKIP;
  nlattr* tb[NDA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(ndmsg), tb, NDA_MAX, nullptr) < 0) return NL_SKIP;
  FdbEntry e;
  e.ifindex = ndm->ndm_ifindex;
  e.state = ndm->ndm_state;
  e.flags = ndm->ndm_flags;
  if (tb[NDA_LLADDR]) e.mac = MacText(static_cast<const uint8_t*>(nla_data(tb[NDA_LLADDR])), static_cast<size_t>(nla_len(tb[NDA_LLADDR])));
  if (tb[NDA_DST]) {
    int len = nla_len(tb[NDA_DST]);
    char text[INET6_ADDRSTRLEN] = {};
    int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
    if (family != 0 && inet_ntop(family, nla_data(tb[NDA_DST]), text, sizeof text) != nullptr) e.dst = text;
  }
  if (tb[NDA_VNI] && nla_len(tb[NDA_VNI]) >= 4) e.vni = nla_get_u32(tb[NDA_VNI]);
  if (tb[NDA_PORT] && nla_len(tb[NDA_PORT]) >= 2) e.port = ntohs(nla_get_u16(tb[NDA_PORT]));
  if (tb[NDA_VLAN] && nla_len(tb[NDA_VLAN]) >= 2) e.vlan = nla_get_u16(tb[NDA_VLAN]);
  if (tb[NDA_IFINDEX] && nla_len(tb[NDA_IFINDEX]) >= 4) e.via_index = static_cast<int>(nla_get_u32(tb[NDA_IFINDEX]));
  if (tb[NDA_MASTER] && nla_len(tb[NDA_MASTER]) >= 4) e.master_index = static_cast<int>(nla_get_u32(tb[NDA_MASTER]));
  state->out->push_back(std::move(e));
  return NL_OK;
}

// One NTF_SELF request: the entry lives in the device's own table (a VXLAN device's remotes), not
// in the FDB of a bridge it may be a port of.
void ChangeFdb(int type, int flags, const FdbRequest& r) {
  const std::string object = RequestObject(r);
  int ifindex = DeviceIndex(r.device);
  unsigned char dst[16] = {};
  int dst_len = 0;
  if (!r.dst.empty()) {
    if (inet_pton(AF_INET, r.dst.c_str(), dst) == 1) dst_len = 4;
    else if (inet_pton(AF_INET6, r.dst.c_str(), dst) == 1) dst_len = 16;
    else throw KernelError(EINVAL, object, "dst " + r.dst + " is not an IPv4 or IPv6 address");
  }
  NlRouteSocket sock(object);
  NlMessage msg(nlmsg_alloc_simple(type, flags));
  if (!msg) throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
  ndmsg ndm{};
  ndm.ndm_family = AF_BRIDGE;
  ndm.ndm_ifindex = ifindex;
  ndm.ndm_flags = NTF_SELF;
  // What `bridge fdb add ... permanent` sends; a VXLAN device refuses an entry with neither
  // NUD_PERMANENT nor NUD_REACHABLE.
  ndm.ndm_state = NUD_PERMANENT | NUD_NOARP;
  if (nlmsg_append(msg.get(), &ndm, sizeof ndm, NLMSG_ALIGNTO) < 0 || nla_put(msg.get(), NDA_LLADDR, sizeof r.mac, r.mac) < 0 ||
      (dst_len != 0 && nla_put(msg.get(), NDA_DST, dst_len, dst) < 0)) {
    throw KernelError(EMSGSIZE, object, "the request does not fit in a netlink message");
  }
  sock.SendAndWait(msg.get());
}

}  // namespace

std::vector<FdbEntry> ListFdb(const std::string& device) {
  int ifindex = device.empty() ? 0 : DeviceIndex(device);
  NlRouteSocket sock(device.empty() ? "fdb" : "fdb on dev " + device);
  std::vector<FdbEntry> out;
  DumpState state{ifindex, &out};
  // Exactly an ndmsg: a longer request is read as the legacy ifinfomsg form of an FDB dump.
  ndmsg ndm{};
  ndm.ndm_family = AF_BRIDGE;
  sock.Dump(RTM_GETNEIGH, &ndm, sizeof ndm, OnNeighbour, &state);
  IndexNames names;
  for (FdbEntry& e : out) {
    e.device = names(e.ifindex);
    e.via = names(e.via_index);
    e.master = names(e.master_index);
  }
  return out;
}

void AddFdb(const FdbRequest& request) {
  ChangeFdb(RTM_NEWNEIGH, NLM_F_CREATE | (request.append ? NLM_F_APPEND : NLM_F_REPLACE), request);
}

void RemoveFdb(const FdbRequest& request) { ChangeFdb(RTM_DELNEIGH, 0, request); }

}  // namespace nodenet
