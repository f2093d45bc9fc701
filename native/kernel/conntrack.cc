#include "conntrack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cstring>
#include <memory>
#include <string>

#include "error.h"
#include "netlink.h"

namespace nodenet {

namespace {

struct Match {
  std::vector<uint8_t> tuple;  // the CTA_TUPLE_ORIG attribute, header included, as the kernel sent it
  std::vector<uint8_t> zone;   // the CTA_ZONE attribute, if any
};

struct DumpState {
  const ConntrackFilter* filter;
  std::vector<Match>* matches;
};

std::vector<uint8_t> WholeAttr(const nlattr* attr) {
  const auto* p = reinterpret_cast<const uint8_t*>(attr);
  return std::vector<uint8_t>(p, p + NLA_ALIGN(attr->nla_len));
}

bool Matches(nlattr* orig, const ConntrackFilter& f) {
  nlattr* tuple[CTA_TUPLE_MAX + 1] = {};
  if (nla_parse_nested(tuple, CTA_TUPLE_MAX, orig, nullptr) < 0 || !tuple[CTA_TUPLE_IP] || !tuple[CTA_TUPLE_PROTO]) return false;
  nlattr* ip[CTA_IP_MAX + 1] = {};
  nlattr* proto[CTA_PROTO_MAX + 1] = {};
  if (nla_parse_nested(ip, CTA_IP_MAX, tuple[CTA_TUPLE_IP], nullptr) < 0) return false;
  if (nla_parse_nested(proto, CTA_PROTO_MAX, tuple[CTA_TUPLE_PROTO], nullptr) < 0) return false;
  if (!proto[CTA_PROTO_NUM] || nla_get_u8(proto[CTA_PROTO_NUM]) != f.protocol) return false;
  nlattr* dst = ip[f.family == IpFamily::kIPv4 ? CTA_IP_V4_DST : CTA_IP_V6_DST];
  if (!dst || static_cast<size_t>(nla_len(dst)) != f.destination.size()) return false;
  if (std::memcmp(nla_data(dst), f.destination.data(), f.destination.size()) != 0) return false;
  if (f.port == 0) return true;
  return proto[CTA_PROTO_DST_PORT] && ntohs(nla_get_u16(proto[CTA_PROTO_DST_PORT])) == f.port;
}

int OnEntry(nl_msg* msg, void* arg) {
  auto* state = static_cast<DumpState*>(arg);
  nlmsghdr* hdr = nlmsg_hdr(msg);
  nlattr* tb[CTA_MAX + 1] = {};
  if (nlmsg_parse(hdr, sizeof(nfgenmsg), tb, CTA_MAX, nullptr) < 0 || !tb[CTA_TUPLE_ORIG]) return NL_SKIP;
  if (!Matches(tb[CTA_TUPLE_ORIG], *state->filter)) return NL_OK;
  Match m;
  m.tuple = WholeAttr(tb[CTA_TUPLE_ORIG]);
  if (tb[CTA_ZONE]) m.zone = WholeAttr(tb[CTA_ZONE]);
  state->matches->push_back(std::move(m));
  return NL_OK;
}

nl_msg* CtMessage(int type, int flags, IpFamily family) {
  nl_msg* msg = nlmsg_alloc_simple((NFNL_SUBSYS_CTNETLINK << 8) | type, flags);
  if (msg == nullptr) return nullptr;
  nfgenmsg gen{};
  gen.nfgen_family = family == IpFamily::kIPv4 ? AF_INET : AF_INET6;
  gen.version = NFNETLINK_V0;
  if (nlmsg_append(msg, &gen, sizeof gen, NLMSG_ALIGNTO) < 0) {
    nlmsg_free(msg);
    return nullptr;
  }
  return msg;
}

}  // namespace

size_t DeleteConntrack(const ConntrackFilter& f) {
  const size_t size = f.family == IpFamily::kIPv4 ? 4 : 16;
  char text[INET6_ADDRSTRLEN] = "?";
  if (f.destination.size() == size) inet_ntop(f.family == IpFamily::kIPv4 ? AF_INET : AF_INET6, f.destination.data(), text, sizeof text);
  const std::string object = std::string("conntrack entries to ") + text + (f.port ? ":" + std::to_string(f.port) : "") +
                             " (protocol " + std::to_string(f.protocol) + ")";
  if (f.destination.size() != size) throw KernelError(EINVAL, object, "destination address has the wrong length");

  NlSocket sock(NETLINK_NETFILTER, object);
  std::vector<Match> matches;
  DumpState state{&f, &matches};
  {
    // A dump streams every entry through the callback; only the matches are kept.
    NlMessage dump(CtMessage(IPCTNL_MSG_CT_GET, NLM_F_DUMP, f.family));
    if (!dump) throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
    int rc = nl_send_auto(sock.get(), dump.get());
    if (rc < 0) sock.Fail(rc);
    nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, OnEntry, &state);
    rc = nl_recvmsgs_default(sock.get());
    if (rc < 0) sock.Fail(rc);
  }
  nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_DEFAULT, nullptr, nullptr);
  size_t deleted = 0;
  for (const Match& m : matches) {
    NlMessage del(CtMessage(IPCTNL_MSG_CT_DELETE, 0, f.family));
    if (!del) throw KernelError(ENOMEM, object, "cannot allocate a netlink message");
    void* tail = nlmsg_reserve(del.get(), m.tuple.size() + m.zone.size(), NLA_ALIGNTO);
    if (tail == nullptr) throw KernelError(EMSGSIZE, object, "conntrack tuple does not fit in a message");
    std::memcpy(tail, m.tuple.data(), m.tuple.size());
    if (!m.zone.empty()) std::memcpy(static_cast<uint8_t*>(tail) + m.tuple.size(), m.zone.data(), m.zone.size());
    sock.ResetError();
    int rc = nl_send_auto(sock.get(), del.get());
    if (rc < 0) sock.Fail(rc);
    rc = nl_wait_for_ack(sock.get());
    if (rc < 0) {
      if (NlErrorToErrno(rc) == ENOENT) continue;  // expired meanwhile
      sock.Fail(rc);
    }
    ++deleted;
  }
  return deleted;
}

}  // namespace nodenet
