#include "qdiscs.h"

#include <errno.h>
#include <linux/gen_stats.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "error.h"
#include "netlink.h"

namespace nodenet {

namespace {

std::string HandleText(uint32_t handle) {
  if (handle == TC_H_ROOT) return "root";
  char buf[24];
  std::snprintf(buf, sizeof buf, "%x:%x", TC_H_MAJ(handle) >> 16, TC_H_MIN(handle));
  return buf;
}

std::string RequestObject(const QdiscRequest& r) {
  std::string what = "qdisc";
  if (!r.kind.empty()) what += " " + r.kind;
  if (r.handle != 0) what += " handle " + HandleText(r.handle);
  what += " parent " + HandleText(r.parent) + " on dev " + r.device;
  return what;
}

std::vector<uint8_t> AttrBytes(nlattr* attr) {
  const auto* data = static_cast<const uint8_t*>(nla_data(attr));
  return std::vector<uint8_t>(data, data + nla_len(attr));
}

void ParseStats(nlattr* stats2, QdiscInfo& out) {
  nlattr* tb[TCA_STATS_MAX + 1] = {};
  if (nla_parse_nested(tb, TCA_STATS_MAX, stats2, nullptr) < 0) return;
  if (tb[TCA_STATS_BASIC]) {
    gnet_stats_basic basic{};
    std::memcpy(&basic, nla_data(tb[TCA_STATS_BASIC]), std::min<size_t>(sizeof basic, nla_len(tb[TCA_STATS_BASIC])));
    out.bytes = basic.bytes;
    out.packets = basic.packets;
    out.has_stats = true;
  }
  if (tb[TCA_STATS_PKT64] && nla_len(tb[TCA_STATS_PKT64]) >= 8) out.packets = nla_get_u64(tb[TCA_STATS_PKT64]);
  if (tb[TCA_STATS_QUEUE]) {
    gnet_stats_queue queue{};
    std::memcpy(&queue, nla_data(tb[TCA_STATS_QUEUE]), std::min<size_t>(sizeof queue, nla_len(tb[TCA_STATS_QUEUE])));
    out.qlen = queue.qlen;
    out.backlog = queue.backlog;
    out.drops = queue.drops;
    out.requeues = queue.requeues;
    out.overlimits = queue.overlimits;
    out.has_stats = true;
  }
}

struct DumpState {
  int ifindex;  // 0: all
  std::vector<QdiscInfo>* out;
};

int OnQdisc(nl_msg* msg, void* arg) {
  auto* state = static_cast<DumpState*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  if (hdr->nlmsg_type != RTM_NEWQDISC) return NL_SKIP;
  nlattr* tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0) return NL_SKIP;
  const auto* tcm = static_cast<const tcmsg*>(nlmsg_data(hdr));
  if (state->ifindex != 0 && tcm->tcm_ifindex != state->ifindex) return NL_SKIP;
  QdiscInfo info;
  info.ifindex = tcm->tcm_ifindex;
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(static_cast<unsigned>(tcm->tcm_ifindex), name) != nullptr) info.device = name;
  info.handle = tcm->tcm_handle;
  info.parent = tcm->tcm_parent;
  if (tb[TCA_KIND]) info.kind = nla_get_string(tb[TCA_KIND]);
  if (tb[TCA_OPTIONS]) info.options = AttrBytes(tb[TCA_OPTIONS]);
  if (tb[TCA_XSTATS]) info.xstats = AttrBytes(tb[TCA_XSTATS]);
  if (tb[TCA_STATS2]) ParseStats(tb[TCA_STATS2], info);
  state->out->push_back(std::move(info));
  return NL_OK;
}

}  // namespace

int DeviceIndex(const std::string& device) {
  unsigned index = if_nametoindex(device.c_str());
  if (index == 0) {
    int err = errno == ENXIO ? ENODEV : errno;
    throw KernelError(err, "dev " + device, err == ENODEV ? "no such device in this network namespace" : "");
  }
  return static_cast<int>(index);
}

std::vector<QdiscInfo> ListQdiscs(const std::string& device) {
  int ifindex = device.empty() ? 0 : DeviceIndex(device);
  NlRouteSocket sock(device.empty() ? "qdiscs" : "qdiscs on dev " + device);
  std::vector<QdiscInfo> out;
  DumpState state{ifindex, &out};
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  sock.Dump(RTM_GETQDISC, &tcm, sizeof tcm, OnQdisc, &state);
  return out;
}

void ChangeQdisc(const QdiscRequest& request) {
  const std::string object = RequestObject(request);
  int ifindex = DeviceIndex(request.device);
  NlRouteSocket sock(object);

  int type = RTM_NEWQDISC;
  int flags = 0;
  switch (request.op) {
    case QdiscOp::kAdd: flags = NLM_F_CREATE | NLM_F_EXCL; break;
    case QdiscOp::kReplace: flags = NLM_F_CREATE | NLM_F_REPLACE; break;
    case QdiscOp::kChange: flags = 0; break;
    case QdiscOp::kDelete: type = RTM_DELQDISC; break;
  }
  // Sized for the options: netem's delay distribution table alone is 8 KiB, past libnl's default
  // one-page message.
  const size_t size = NLMSG_SPACE(sizeof(tcmsg)) + nla_total_size(static_cast<int>(request.kind.size() + 1)) +
                      nla_total_size(static_cast<int>(request.options.size())) + 64;
  NlMessage msg(nlmsg_alloc_size(size));
  if (!msg || nlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, type, 0, flags) == nullptr) {
    throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
  }
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  tcm.tcm_parent = request.parent;
  tcm.tcm_handle = request.handle;
  if (nlmsg_append(msg.get(), &tcm, sizeof tcm, NLMSG_ALIGNTO) < 0 ||
      (!request.kind.empty() && nla_put_string(msg.get(), TCA_KIND, request.kind.c_str()) < 0) ||
      (request.op != QdiscOp::kDelete && !request.options.empty() &&
       nla_put(msg.get(), TCA_OPTIONS, static_cast<int>(request.options.size()), request.options.data()) < 0)) {
    throw KernelError(EMSGSIZE, object, "qdisc options do not fit in a netlink message");
  }
  sock.SendAndWait(msg.get());
}

}  // namespace nodenet
