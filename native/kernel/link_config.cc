#include "link_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <memory>

#include "error.h"
#include "netlink.h"
#include "qdiscs.h"

namespace nodenet {

namespace {

struct Address {
  int family = 0;
  unsigned char bytes[16] = {};
  int length() const { return family == AF_INET ? 4 : 16; }
};

Address ParseAddress(const std::string& text, const std::string& object, const char* what) {
  Address a;
  if (inet_pton(AF_INET, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), a.bytes) == 1) {
    a.family = AF_INET6;
  } else {
    throw KernelError(EINVAL, object, std::string(what) + " " + text + " is not an IPv4 or IPv6 address");
  }
  return a;
}

std::string AddressText(int family, const nlattr* attr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (nla_len(attr) != (family == AF_INET ? 4 : 16) || inet_ntop(family, nla_data(attr), text, sizeof text) == nullptr) return {};
  return text;
}

[[noreturn]] void TooBig(const std::string& object) {
  throw KernelError(EMSGSIZE, object, "the request does not fit in a netlink message");
}

// An rtnetlink link message addressed by name: ifi_index stays 0, so IFLA_IFNAME selects the link
// (and names a new one) instead of renaming it.
NlMessage LinkMessage(int type, int flags, const std::string& name, const std::optional<bool>& up, const std::string& object) {
  NlMessage msg(nlmsg_alloc_simple(type, flags));
  if (!msg) throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  if (up) {
    ifi.ifi_change = IFF_UP;
    ifi.ifi_flags = *up ? IFF_UP : 0;
  }
  if (nlmsg_append(msg.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 || nla_put_string(msg.get(), IFLA_IFNAME, name.c_str()) < 0) {
    TooBig(object);
  }
  return msg;
}

int PutFlag(nl_msg* msg, int type, const std::optional<bool>& value) {
  return value ? nla_put_u8(msg, type, *value ? 1 : 0) : 0;
}

int PutBridgeData(nl_msg* msg, const BridgeConfig& c) {
  if (c.stp && nla_put_u32(msg, IFLA_BR_STP_STATE, *c.stp ? 1 : 0) < 0) return -1;
  if (PutFlag(msg, IFLA_BR_NF_CALL_IPTABLES, c.nf_call_iptables) < 0) return -1;
  return PutFlag(msg, IFLA_BR_NF_CALL_IP6TABLES, c.nf_call_ip6tables);
}

int PutVxlanData(nl_msg* msg, const VxlanConfig& c, const std::string& object) {
  if (c.vni && nla_put_u32(msg, IFLA_VXLAN_ID, *c.vni) < 0) return -1;
  if (c.port && nla_put_u16(msg, IFLA_VXLAN_PORT, htons(*c.port)) < 0) return -1;
  if (c.port_min && c.port_max) {
    ifla_vxlan_port_range range{htons(*c.port_min), htons(*c.port_max)};
    if (nla_put(msg, IFLA_VXLAN_PORT_RANGE, sizeof range, &range) < 0) return -1;
  }
  if (!c.local.empty()) {
    Address a = ParseAddress(c.local, object, "local");
    if (nla_put(msg, a.family == AF_INET ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, a.length(), a.bytes) < 0) return -1;
  }
  if (!c.group.empty()) {
    Address a = ParseAddress(c.group, object, "group");
    if (nla_put(msg, a.family == AF_INET ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, a.length(), a.bytes) < 0) return -1;
  }
  if (!c.underlay.empty() && nla_put_u32(msg, IFLA_VXLAN_LINK, static_cast<uint32_t>(DeviceIndex(c.underlay))) < 0) return -1;
  if (PutFlag(msg, IFLA_VXLAN_LEARNING, c.learning) < 0) return -1;
  if (c.ttl && nla_put_u8(msg, IFLA_VXLAN_TTL, *c.ttl) < 0) return -1;
  if (c.tos && nla_put_u8(msg, IFLA_VXLAN_TOS, *c.tos) < 0) return -1;
  return PutFlag(msg, IFLA_VXLAN_UDP_CSUM, c.udp_csum);
}

// Everything of the request but the alias, which CreateLink and UpdateLink place differently.
void PutLinkAttributes(nl_msg* msg, const LinkRequest& r, const std::string& object) {
  if (r.mtu && nla_put_u32(msg, IFLA_MTU, *r.mtu) < 0) TooBig(object);
  if (!r.address.empty() && nla_put(msg, IFLA_ADDRESS, static_cast<int>(r.address.size()), r.address.data()) < 0) TooBig(object);
  if (r.master) {
    uint32_t master = r.master->empty() ? 0 : static_cast<uint32_t>(DeviceIndex(*r.master));
    if (nla_put_u32(msg, IFLA_MASTER, master) < 0) TooBig(object);
  }
  if (r.kind.empty()) return;
  nlattr* info = nla_nest_start(msg, IFLA_LINKINFO);
  if (info == nullptr || nla_put_string(msg, IFLA_INFO_KIND, r.kind.c_str()) < 0) TooBig(object);
  if (r.bridge || r.vxlan) {
    nlattr* data = nla_nest_start(msg, IFLA_INFO_DATA);
    if (data == nullptr) TooBig(object);
    int rc = r.bridge ? PutBridgeData(msg, *r.bridge) : PutVxlanData(msg, *r.vxlan, object);
    if (rc < 0) TooBig(object);
    nla_nest_end(msg, data);
  }
  nla_nest_end(msg, info);
}

void PutAlias(nl_msg* msg, const std::string& alias, const std::string& object) {
  // An empty IFLA_IFALIAS is how the kernel is told to drop the alias.
  if (nla_put(msg, IFLA_IFALIAS, static_cast<int>(alias.size()), alias.data()) < 0) TooBig(object);
}

uint8_t U8(nlattr* const* tb, int type) { return tb[type] && nla_len(tb[type]) >= 1 ? nla_get_u8(tb[type]) : 0; }
uint32_t U32(nlattr* const* tb, int type) { return tb[type] && nla_len(tb[type]) >= 4 ? nla_get_u32(tb[type]) : 0; }
uint16_t Be16(nlattr* const* tb, int type) { return tb[type] && nla_len(tb[type]) >= 2 ? ntohs(nla_get_u16(tb[type])) : 0; }

std::optional<bool> OptionalFlag(nlattr* const* tb, int type) {
  if (tb[type] == nullptr || nla_len(tb[type]) < 1) return std::nullopt;
  return nla_get_u8(tb[type]) != 0;
}

BridgeDetails DecodeBridge(nlattr* data) {
  nlattr* tb[IFLA_BR_MAX + 1] = {};
  BridgeDetails out;
  if (data == nullptr || nla_parse_nested(tb, IFLA_BR_MAX, data, nullptr) < 0) return out;
  out.stp = U32(tb, IFLA_BR_STP_STATE) != 0;
  out.nf_call_iptables = OptionalFlag(tb, IFLA_BR_NF_CALL_IPTABLES);
  out.nf_call_ip6tables = OptionalFlag(tb, IFLA_BR_NF_CALL_IP6TABLES);
  return out;
}

VxlanDetails DecodeVxlan(nlattr* data) {
  nlattr* tb[IFLA_VXLAN_MAX + 1] = {};
  VxlanDetails out;
  if (data == nullptr || nla_parse_nested(tb, IFLA_VXLAN_MAX, data, nullptr) < 0) return out;
  out.vni = U32(tb, IFLA_VXLAN_ID);
  out.port = Be16(tb, IFLA_VXLAN_PORT);
  if (tb[IFLA_VXLAN_PORT_RANGE] && static_cast<size_t>(nla_len(tb[IFLA_VXLAN_PORT_RANGE])) >= sizeof(ifla_vxlan_port_range)) {
    const auto* range = static_cast<const ifla_vxlan_port_range*>(nla_data(tb[IFLA_VXLAN_PORT_RANGE]));
    out.port_min = ntohs(range->low);
    out.port_max = ntohs(range->high);
  }
  if (tb[IFLA_VXLAN_LOCAL]) out.local = AddressText(AF_INET, tb[IFLA_VXLAN_LOCAL]);
  if (tb[IFLA_VXLAN_LOCAL6]) out.local = AddressText(AF_INET6, tb[IFLA_VXLAN_LOCAL6]);
  if (tb[IFLA_VXLAN_GROUP]) out.group = AddressText(AF_INET, tb[IFLA_VXLAN_GROUP]);
  if (tb[IFLA_VXLAN_GROUP6]) out.group = AddressText(AF_INET6, tb[IFLA_VXLAN_GROUP6]);
  out.underlay_index = static_cast<int>(U32(tb, IFLA_VXLAN_LINK));
  out.learning = U8(tb, IFLA_VXLAN_LEARNING) != 0;
  out.ttl = U8(tb, IFLA_VXLAN_TTL);
  out.tos = U8(tb, IFLA_VXLAN_TOS);
  out.udp_csum = U8(tb, IFLA_VXLAN_UDP_CSUM) != 0;
  return out;
}

int OnLink(nl_msg* msg, void* arg) {
  auto* out = static_cast<std::vector<LinkDetails>*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  if (hdr->nlmsg_type != RTM_NEWLINK) return NL_SKIP;
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0 || tb[IFLA_LINKINFO] == nullptr) return NL_SKIP;
  nlattr* info[IFLA_INFO_MAX + 1] = {};
  if (nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) < 0 || info[IFLA_INFO_KIND] == nullptr) return NL_SKIP;
  const std::string kind = nla_get_string(info[IFLA_INFO_KIND]);
  if (kind != "bridge" && kind != "vxlan") return NL_SKIP;
  LinkDetails details;
  details.index = static_cast<const ifinfomsg*>(nlmsg_data(hdr))->ifi_index;
  if (tb[IFLA_IFNAME]) details.name = nla_get_string(tb[IFLA_IFNAME]);
  if (kind == "bridge") details.bridge = DecodeBridge(info[IFLA_INFO_DATA]);
  else details.vxlan = DecodeVxlan(info[IFLA_INFO_DATA]);
  out->push_back(std::move(details));
  return NL_OK;
}

}  // namespace

void CreateLink(const LinkRequest& request) {
  const std::string object = "link " + request.name + " (" + request.kind + ")";
  NlRouteSocket sock(object);
  NlMessage create = LinkMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, request.name, request.up, object);
  PutLinkAttributes(create.get(), request, object);
  sock.SendAndWait(create.get());
  if (!request.alias || request.alias->empty()) return;
  try {
    NlMessage alias = LinkMessage(RTM_NEWLINK, 0, request.name, std::nullopt, object);
    PutAlias(alias.get(), *request.alias, object);
    sock.SendAndWait(alias.get());
  } catch (const KernelError&) {
    // A link without the alias that marks it as nodenet's would be left behind unowned.
    NlMessage remove = LinkMessage(RTM_DELLINK, 0, request.name, std::nullopt, object);
    sock.ResetError();
    if (nl_send_auto(sock.get(), remove.get()) >= 0) nl_wait_for_ack(sock.get());
    throw;
  }
}

void UpdateLink(const LinkRequest& request) {
  const std::string object = "link " + request.name;
  NlRouteSocket sock(object);
  NlMessage msg = LinkMessage(RTM_NEWLINK, 0, request.name, request.up, object);
  PutLinkAttributes(msg.get(), request, object);
  if (request.alias) PutAlias(msg.get(), *request.alias, object);
  sock.SendAndWait(msg.get());
}

void RemoveLink(const std::string& name) {
  const std::string object = "link " + name;
  NlRouteSocket sock(object);
  NlMessage msg = LinkMessage(RTM_DELLINK, 0, name, std::nullopt, object);
  sock.SendAndWait(msg.get());
}

std::vector<LinkDetails> ListLinkDetails() {
  NlRouteSocket sock("links");
  std::vector<LinkDetails> out;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  sock.Dump(RTM_GETLINK, &ifi, sizeof ifi, OnLink, &out);
  return out;
}

}  // namespace nodenet
