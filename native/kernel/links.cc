#include "links.h"

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/link.h>

#include <algorithm>
#include <memory>

#include "error.h"
#include "mac.h"
#include "netlink.h"

namespace nodenet {

namespace {

struct CacheFree {
  void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};

std::string FormatLinkAddress(nl_addr* addr) {
  if (addr == nullptr) return {};
  return MacText(static_cast<const uint8_t*>(nl_addr_get_binary_addr(addr)), nl_addr_get_len(addr));
}

}  // namespace

std::vector<LinkInfo> ListLinks() {
  NlRouteSocket sock("links");
  nl_cache* raw = nullptr;
  int rc = rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw);
  if (rc < 0) sock.Fail(rc);
  std::unique_ptr<nl_cache, CacheFree> cache(raw);

  std::vector<LinkInfo> links;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj != nullptr; obj = nl_cache_get_next(obj)) {
    auto* link = reinterpret_cast<rtnl_link*>(obj);
    LinkInfo info;
    info.index = rtnl_link_get_ifindex(link);
    if (const char* name = rtnl_link_get_name(link)) info.name = name;
    if (const char* kind = rtnl_link_get_type(link)) info.kind = kind;
    if (const char* slave = rtnl_link_get_slave_type(link)) info.slave_kind = slave;
    info.mtu = rtnl_link_get_mtu(link);
    info.flags = rtnl_link_get_flags(link);
    info.operstate = rtnl_link_get_operstate(link);
    info.txqlen = rtnl_link_get_txqlen(link);
    info.master_index = rtnl_link_get_master(link);
    info.link_index = rtnl_link_get_link(link);
    int32_t netnsid = -1;
    if (rtnl_link_get_link_netnsid(link, &netnsid) == 0) info.link_netnsid = netnsid;
    if (const char* alias = rtnl_link_get_ifalias(link)) info.alias = alias;
    info.address = FormatLinkAddress(rtnl_link_get_addr(link));
    links.push_back(std::move(info));
  }
  std::sort(links.begin(), links.end(), [](const LinkInfo& a, const LinkInfo& b) { return a.index < b.index; });
  return links;
}

}  // namespace nodenet
