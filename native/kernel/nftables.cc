#include "nftables.h"

// The C library's network headers first: the kernel's defer to them only in this order.
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>  // before libnftnl's headers, which use FILE without including it
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string_view>
#include <tuple>

#include "error.h"
#include "extack.h"

// Linux 5.14; C libraries older than their kernel headers lack it.
#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace nodenet {

namespace {

// ---------------------------------------------------------------------------------------------
// The attribute table. One row per attribute nodenet carries; the type must be the one libnftnl
// stores the attribute as (nftables_test checks every row against the library it was built with).

#define NODENET_NFT_ATTR(expr, key, id, type) NftExprAttr{expr, key, id, NftAttrType::type}

const std::vector<NftExprAttr> kAttrs = {
    NODENET_NFT_ATTR("payload", "dreg", NFTNL_EXPR_PAYLOAD_DREG, kU32),
    NODENET_NFT_ATTR("payload", "base", NFTNL_EXPR_PAYLOAD_BASE, kU32),
    NODENET_NFT_ATTR("payload", "offset", NFTNL_EXPR_PAYLOAD_OFFSET, kU32),
    NODENET_NFT_ATTR("payload", "len", NFTNL_EXPR_PAYLOAD_LEN, kU32),
    NODENET_NFT_ATTR("payload", "sreg", NFTNL_EXPR_PAYLOAD_SREG, kU32),
    NODENET_NFT_ATTR("payload", "csum_type", NFTNL_EXPR_PAYLOAD_CSUM_TYPE, kU32),
    NODENET_NFT_ATTR("payload", "csum_offset", NFTNL_EXPR_PAYLOAD_CSUM_OFFSET, kU32),
    NODENET_NFT_ATTR("payload", "flags", NFTNL_EXPR_PAYLOAD_FLAGS, kU32),

    NODENET_NFT_ATTR("meta", "key", NFTNL_EXPR_META_KEY, kU32),
    NODENET_NFT_ATTR("meta", "dreg", NFTNL_EXPR_META_DREG, kU32),
    NODENET_NFT_ATTR("meta", "sreg", NFTNL_EXPR_META_SREG, kU32),

    NODENET_NFT_ATTR("cmp", "sreg", NFTNL_EXPR_CMP_SREG, kU32),
    NODENET_NFT_ATTR("cmp", "op", NFTNL_EXPR_CMP_OP, kU32),
    NODENET_NFT_ATTR("cmp", "data", NFTNL_EXPR_CMP_DATA, kData),

    NODENET_NFT_ATTR("bitwise", "sreg", NFTNL_EXPR_BITWISE_SREG, kU32),
    NODENET_NFT_ATTR("bitwise", "dreg", NFTNL_EXPR_BITWISE_DREG, kU32),
    NODENET_NFT_ATTR("bitwise", "len", NFTNL_EXPR_BITWISE_LEN, kU32),
    NODENET_NFT_ATTR("bitwise", "mask", NFTNL_EXPR_BITWISE_MASK, kData),
    NODENET_NFT_ATTR("bitwise", "xor", NFTNL_EXPR_BITWISE_XOR, kData),
    NODENET_NFT_ATTR("bitwise", "op", NFTNL_EXPR_BITWISE_OP, kU32),
    NODENET_NFT_ATTR("bitwise", "data", NFTNL_EXPR_BITWISE_DATA, kData),

    NODENET_NFT_ATTR("immediate", "dreg", NFTNL_EXPR_IMM_DREG, kU32),
    NODENET_NFT_ATTR("immediate", "data", NFTNL_EXPR_IMM_DATA, kData),
    NODENET_NFT_ATTR("immediate", "verdict", NFTNL_EXPR_IMM_VERDICT, kS32),
    NODENET_NFT_ATTR("immediate", "chain", NFTNL_EXPR_IMM_CHAIN, kString),
    NODENET_NFT_ATTR("immediate", "chain_id", NFTNL_EXPR_IMM_CHAIN_ID, kU32),

    NODENET_NFT_ATTR("ct", "key", NFTNL_EXPR_CT_KEY, kU32),
    NODENET_NFT_ATTR("ct", "dreg", NFTNL_EXPR_CT_DREG, kU32),
    NODENET_NFT_ATTR("ct", "dir", NFTNL_EXPR_CT_DIR, kU8),
    NODENET_NFT_ATTR("ct", "sreg", NFTNL_EXPR_CT_SREG, kU32),

    NODENET_NFT_ATTR("nat", "type", NFTNL_EXPR_NAT_TYPE, kU32),
    NODENET_NFT_ATTR("nat", "family", NFTNL_EXPR_NAT_FAMILY, kU32),
    NODENET_NFT_ATTR("nat", "reg_addr_min", NFTNL_EXPR_NAT_REG_ADDR_MIN, kU32),
    NODENET_NFT_ATTR("nat", "reg_addr_max", NFTNL_EXPR_NAT_REG_ADDR_MAX, kU32),
    NODENET_NFT_ATTR("nat", "reg_proto_min", NFTNL_EXPR_NAT_REG_PROTO_MIN, kU32),
    NODENET_NFT_ATTR("nat", "reg_proto_max", NFTNL_EXPR_NAT_REG_PROTO_MAX, kU32),
    NODENET_NFT_ATTR("nat", "flags", NFTNL_EXPR_NAT_FLAGS, kU32),

    NODENET_NFT_ATTR("counter", "bytes", NFTNL_EXPR_CTR_BYTES, kU64),
    NODENET_NFT_ATTR("counter", "packets", NFTNL_EXPR_CTR_PACKETS, kU64),

    NODENET_NFT_ATTR("fib", "flags", NFTNL_EXPR_FIB_FLAGS, kU32),
    NODENET_NFT_ATTR("fib", "result", NFTNL_EXPR_FIB_RESULT, kU32),
    NODENET_NFT_ATTR("fib", "dreg", NFTNL_EXPR_FIB_DREG, kU32),

    NODENET_NFT_ATTR("range", "sreg", NFTNL_EXPR_RANGE_SREG, kU32),
    NODENET_NFT_ATTR("range", "op", NFTNL_EXPR_RANGE_OP, kU32),
    NODENET_NFT_ATTR("range", "from_data", NFTNL_EXPR_RANGE_FROM_DATA, kData),
    NODENET_NFT_ATTR("range", "to_data", NFTNL_EXPR_RANGE_TO_DATA, kData),

    NODENET_NFT_ATTR("lookup", "sreg", NFTNL_EXPR_LOOKUP_SREG, kU32),
    NODENET_NFT_ATTR("lookup", "dreg", NFTNL_EXPR_LOOKUP_DREG, kU32),
    NODENET_NFT_ATTR("lookup", "set", NFTNL_EXPR_LOOKUP_SET, kString),
    NODENET_NFT_ATTR("lookup", "set_id", NFTNL_EXPR_LOOKUP_SET_ID, kU32),
    NODENET_NFT_ATTR("lookup", "flags", NFTNL_EXPR_LOOKUP_FLAGS, kU32),

    NODENET_NFT_ATTR("log", "prefix", NFTNL_EXPR_LOG_PREFIX, kString),
    NODENET_NFT_ATTR("log", "group", NFTNL_EXPR_LOG_GROUP, kU16),
    NODENET_NFT_ATTR("log", "snaplen", NFTNL_EXPR_LOG_SNAPLEN, kU32),
    NODENET_NFT_ATTR("log", "qthreshold", NFTNL_EXPR_LOG_QTHRESHOLD, kU16),
    NODENET_NFT_ATTR("log", "level", NFTNL_EXPR_LOG_LEVEL, kU32),
    NODENET_NFT_ATTR("log", "flags", NFTNL_EXPR_LOG_FLAGS, kU32),

    NODENET_NFT_ATTR("limit", "rate", NFTNL_EXPR_LIMIT_RATE, kU64),
    NODENET_NFT_ATTR("limit", "unit", NFTNL_EXPR_LIMIT_UNIT, kU64),
    NODENET_NFT_ATTR("limit", "burst", NFTNL_EXPR_LIMIT_BURST, kU32),
    NODENET_NFT_ATTR("limit", "type", NFTNL_EXPR_LIMIT_TYPE, kU32),
    NODENET_NFT_ATTR("limit", "flags", NFTNL_EXPR_LIMIT_FLAGS, kU32),

    NODENET_NFT_ATTR("masq", "flags", NFTNL_EXPR_MASQ_FLAGS, kU32),
    NODENET_NFT_ATTR("masq", "reg_proto_min", NFTNL_EXPR_MASQ_REG_PROTO_MIN, kU32),
    NODENET_NFT_ATTR("masq", "reg_proto_max", NFTNL_EXPR_MASQ_REG_PROTO_MAX, kU32),

    NODENET_NFT_ATTR("redir", "reg_proto_min", NFTNL_EXPR_REDIR_REG_PROTO_MIN, kU32),
    NODENET_NFT_ATTR("redir", "reg_proto_max", NFTNL_EXPR_REDIR_REG_PROTO_MAX, kU32),
    NODENET_NFT_ATTR("redir", "flags", NFTNL_EXPR_REDIR_FLAGS, kU32),

    NODENET_NFT_ATTR("reject", "type", NFTNL_EXPR_REJECT_TYPE, kU32),
    NODENET_NFT_ATTR("reject", "code", NFTNL_EXPR_REJECT_CODE, kU8),

    NODENET_NFT_ATTR("socket", "key", NFTNL_EXPR_SOCKET_KEY, kU32),
    NODENET_NFT_ATTR("socket", "dreg", NFTNL_EXPR_SOCKET_DREG, kU32),
    NODENET_NFT_ATTR("socket", "level", NFTNL_EXPR_SOCKET_LEVEL, kU32),

    NODENET_NFT_ATTR("exthdr", "dreg", NFTNL_EXPR_EXTHDR_DREG, kU32),
    NODENET_NFT_ATTR("exthdr", "type", NFTNL_EXPR_EXTHDR_TYPE, kU8),
    NODENET_NFT_ATTR("exthdr", "offset", NFTNL_EXPR_EXTHDR_OFFSET, kU32),
    NODENET_NFT_ATTR("exthdr", "len", NFTNL_EXPR_EXTHDR_LEN, kU32),
    NODENET_NFT_ATTR("exthdr", "flags", NFTNL_EXPR_EXTHDR_FLAGS, kU32),
    NODENET_NFT_ATTR("exthdr", "op", NFTNL_EXPR_EXTHDR_OP, kU32),
    NODENET_NFT_ATTR("exthdr", "sreg", NFTNL_EXPR_EXTHDR_SREG, kU32),

    // The extension's own name would be "name", which already is the expression's: it goes by the
    // expression's name instead ({name: 'match', match: 'conntrack', rev: 3, info}).
    NODENET_NFT_ATTR("target", "target", NFTNL_EXPR_TG_NAME, kString),
    NODENET_NFT_ATTR("target", "rev", NFTNL_EXPR_TG_REV, kU32),
    NODENET_NFT_ATTR("target", "info", NFTNL_EXPR_TG_INFO, kXtInfo),
    NODENET_NFT_ATTR("match", "match", NFTNL_EXPR_MT_NAME, kString),
    NODENET_NFT_ATTR("match", "rev", NFTNL_EXPR_MT_REV, kU32),
    NODENET_NFT_ATTR("match", "info", NFTNL_EXPR_MT_INFO, kXtInfo),

    NODENET_NFT_ATTR("quota", "bytes", NFTNL_EXPR_QUOTA_BYTES, kU64),
    NODENET_NFT_ATTR("quota", "consumed", NFTNL_EXPR_QUOTA_CONSUMED, kU64),
    NODENET_NFT_ATTR("quota", "flags", NFTNL_EXPR_QUOTA_FLAGS, kU32),

    NODENET_NFT_ATTR("queue", "num", NFTNL_EXPR_QUEUE_NUM, kU16),
    NODENET_NFT_ATTR("queue", "total", NFTNL_EXPR_QUEUE_TOTAL, kU16),
    NODENET_NFT_ATTR("queue", "flags", NFTNL_EXPR_QUEUE_FLAGS, kU16),
    NODENET_NFT_ATTR("queue", "sreg_qnum", NFTNL_EXPR_QUEUE_SREG_QNUM, kU32),

    NODENET_NFT_ATTR("byteorder", "dreg", NFTNL_EXPR_BYTEORDER_DREG, kU32),
    NODENET_NFT_ATTR("byteorder", "sreg", NFTNL_EXPR_BYTEORDER_SREG, kU32),
    NODENET_NFT_ATTR("byteorder", "op", NFTNL_EXPR_BYTEORDER_OP, kU32),
    NODENET_NFT_ATTR("byteorder", "len", NFTNL_EXPR_BYTEORDER_LEN, kU32),
    NODENET_NFT_ATTR("byteorder", "size", NFTNL_EXPR_BYTEORDER_SIZE, kU32),

    NODENET_NFT_ATTR("dynset", "sreg_key", NFTNL_EXPR_DYNSET_SREG_KEY, kU32),
    NODENET_NFT_ATTR("dynset", "sreg_data", NFTNL_EXPR_DYNSET_SREG_DATA, kU32),
    NODENET_NFT_ATTR("dynset", "op", NFTNL_EXPR_DYNSET_OP, kU32),
    NODENET_NFT_ATTR("dynset", "timeout", NFTNL_EXPR_DYNSET_TIMEOUT, kU64),
    NODENET_NFT_ATTR("dynset", "set_name", NFTNL_EXPR_DYNSET_SET_NAME, kString),
    NODENET_NFT_ATTR("dynset", "set_id", NFTNL_EXPR_DYNSET_SET_ID, kU32),
    NODENET_NFT_ATTR("dynset", "flags", NFTNL_EXPR_DYNSET_FLAGS, kU32),

    NODENET_NFT_ATTR("objref", "imm_type", NFTNL_EXPR_OBJREF_IMM_TYPE, kU32),
    NODENET_NFT_ATTR("objref", "imm_name", NFTNL_EXPR_OBJREF_IMM_NAME, kString),
    NODENET_NFT_ATTR("objref", "set_sreg", NFTNL_EXPR_OBJREF_SET_SREG, kU32),
    NODENET_NFT_ATTR("objref", "set_name", NFTNL_EXPR_OBJREF_SET_NAME, kString),
    NODENET_NFT_ATTR("objref", "set_id", NFTNL_EXPR_OBJREF_SET_ID, kU32),

    NODENET_NFT_ATTR("numgen", "dreg", NFTNL_EXPR_NG_DREG, kU32),
    NODENET_NFT_ATTR("numgen", "modulus", NFTNL_EXPR_NG_MODULUS, kU32),
    NODENET_NFT_ATTR("numgen", "type", NFTNL_EXPR_NG_TYPE, kU32),
    NODENET_NFT_ATTR("numgen", "offset", NFTNL_EXPR_NG_OFFSET, kU32),

    NODENET_NFT_ATTR("hash", "sreg", NFTNL_EXPR_HASH_SREG, kU32),
    NODENET_NFT_ATTR("hash", "dreg", NFTNL_EXPR_HASH_DREG, kU32),
    NODENET_NFT_ATTR("hash", "len", NFTNL_EXPR_HASH_LEN, kU32),
    NODENET_NFT_ATTR("hash", "modulus", NFTNL_EXPR_HASH_MODULUS, kU32),
    NODENET_NFT_ATTR("hash", "seed", NFTNL_EXPR_HASH_SEED, kU32),
    NODENET_NFT_ATTR("hash", "offset", NFTNL_EXPR_HASH_OFFSET, kU32),
    NODENET_NFT_ATTR("hash", "type", NFTNL_EXPR_HASH_TYPE, kU32),

    NODENET_NFT_ATTR("rt", "key", NFTNL_EXPR_RT_KEY, kU32),
    NODENET_NFT_ATTR("rt", "dreg", NFTNL_EXPR_RT_DREG, kU32),

    NODENET_NFT_ATTR("dup", "sreg_addr", NFTNL_EXPR_DUP_SREG_ADDR, kU32),
    NODENET_NFT_ATTR("dup", "sreg_dev", NFTNL_EXPR_DUP_SREG_DEV, kU32),

    NODENET_NFT_ATTR("fwd", "sreg_dev", NFTNL_EXPR_FWD_SREG_DEV, kU32),
    NODENET_NFT_ATTR("fwd", "sreg_addr", NFTNL_EXPR_FWD_SREG_ADDR, kU32),
    NODENET_NFT_ATTR("fwd", "nfproto", NFTNL_EXPR_FWD_NFPROTO, kU32),

    NODENET_NFT_ATTR("connlimit", "count", NFTNL_EXPR_CONNLIMIT_COUNT, kU32),
    NODENET_NFT_ATTR("connlimit", "flags", NFTNL_EXPR_CONNLIMIT_FLAGS, kU32),

    NODENET_NFT_ATTR("tproxy", "family", NFTNL_EXPR_TPROXY_FAMILY, kU32),
    NODENET_NFT_ATTR("tproxy", "reg_addr", NFTNL_EXPR_TPROXY_REG_ADDR, kU32),
    NODENET_NFT_ATTR("tproxy", "reg_port", NFTNL_EXPR_TPROXY_REG_PORT, kU32),

    NODENET_NFT_ATTR("synproxy", "mss", NFTNL_EXPR_SYNPROXY_MSS, kU16),
    NODENET_NFT_ATTR("synproxy", "wscale", NFTNL_EXPR_SYNPROXY_WSCALE, kU8),
    NODENET_NFT_ATTR("synproxy", "flags", NFTNL_EXPR_SYNPROXY_FLAGS, kU32),

    NODENET_NFT_ATTR("osf", "dreg", NFTNL_EXPR_OSF_DREG, kU32),
    NODENET_NFT_ATTR("osf", "ttl", NFTNL_EXPR_OSF_TTL, kU8),
    NODENET_NFT_ATTR("osf", "flags", NFTNL_EXPR_OSF_FLAGS, kU32),

    NODENET_NFT_ATTR("xfrm", "dreg", NFTNL_EXPR_XFRM_DREG, kU32),
    NODENET_NFT_ATTR("xfrm", "key", NFTNL_EXPR_XFRM_KEY, kU32),
    NODENET_NFT_ATTR("xfrm", "dir", NFTNL_EXPR_XFRM_DIR, kU8),
    NODENET_NFT_ATTR("xfrm", "spnum", NFTNL_EXPR_XFRM_SPNUM, kU32),

    NODENET_NFT_ATTR("tunnel", "key", NFTNL_EXPR_TUNNEL_KEY, kU32),
    NODENET_NFT_ATTR("tunnel", "dreg", NFTNL_EXPR_TUNNEL_DREG, kU32),

    NODENET_NFT_ATTR("flow_offload", "table_name", NFTNL_EXPR_FLOW_TABLE_NAME, kString),

    NODENET_NFT_ATTR("last", "msecs", NFTNL_EXPR_LAST_MSECS, kU64),
    NODENET_NFT_ATTR("last", "set", NFTNL_EXPR_LAST_SET, kU32),
};

#undef NODENET_NFT_ATTR

// Expressions that have no attributes but are still known (and buildable).
const char* const kBareExprs[] = {"notrack"};

using AttrIndex = std::map<std::string, std::vector<const NftExprAttr*>, std::less<>>;

const AttrIndex& Index() {
  static const AttrIndex index = [] {
    AttrIndex out;
    for (const NftExprAttr& a : kAttrs) out[a.expr].push_back(&a);
    for (const char* bare : kBareExprs) out[bare];
    return out;
  }();
  return index;
}

const std::vector<const NftExprAttr*>* AttrsOf(const std::string& expr) {
  auto it = Index().find(expr);
  return it == Index().end() ? nullptr : &it->second;
}

// ---------------------------------------------------------------------------------------------
// RAII for libnftnl and libmnl handles.

struct NftnlDelete {
  void operator()(nftnl_table* p) const { nftnl_table_free(p); }
  void operator()(nftnl_chain* p) const { nftnl_chain_free(p); }
  void operator()(nftnl_rule* p) const { nftnl_rule_free(p); }
  void operator()(nftnl_expr* p) const { nftnl_expr_free(p); }
  void operator()(nftnl_gen* p) const { nftnl_gen_free(p); }
  void operator()(nftnl_batch* p) const { nftnl_batch_free(p); }
  void operator()(nftnl_expr_iter* p) const { nftnl_expr_iter_destroy(p); }
  void operator()(mnl_socket* p) const { mnl_socket_close(p); }
};

template <class T>
using Owned = std::unique_ptr<T, NftnlDelete>;

template <class T>
Owned<T> Check(T* p, const std::string& object, const char* what) {
  if (p == nullptr) throw KernelError(ENOMEM, object, std::string("cannot allocate ") + what);
  return Owned<T>(p);
}

// Requests nodenet builds on the stack are small: a header and at most a table name.
constexpr size_t kRequestBufferSize = 8192;

constexpr uint16_t NftType(uint16_t msg) { return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg); }

// A NETLINK_NETFILTER socket in the calling thread's netns, bound to a kernel-chosen port id.
class NftSocket {
 public:
  explicit NftSocket(std::string object) : object_(std::move(object)) {
    sock_.reset(mnl_socket_open(NETLINK_NETFILTER));
    if (!sock_) Fail("cannot open a netfilter netlink socket");
    if (mnl_socket_bind(sock_.get(), 0, MNL_SOCKET_AUTOPID) < 0) Fail("cannot bind a netfilter netlink socket");
    int one = 1;
    // Best effort, as for the libnl sockets: older kernels still report errors, without the text.
    setsockopt(fd(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    // The kernel answers within the send (batches) or the receive (dumps); a reply that has not come
    // after this long never will, and a worker thread must not hang on it.
    timeval timeout{30, 0};
    setsockopt(fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }

  int fd() const { return mnl_socket_get_fd(sock_.get()); }
  uint32_t NextSeq() { return ++seq_; }

  // The cookie of the netns the socket was opened in (see NftGeneration).
  uint64_t NetnsCookie() const {
    uint64_t cookie = 0;
    socklen_t len = sizeof cookie;
    if (getsockopt(fd(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0) {
      Fail("cannot read the network namespace's cookie (SO_NETNS_COOKIE needs Linux 5.14 or later)");
    }
    return cookie;
  }

  // Throws errno (read first: building the message may change it) with what failed.
  [[noreturn]] void Fail(const char* what) const {
    int err = errno;
    throw KernelError(err, object_, std::string(what) + ": " + ErrnoText(err));
  }

  // Raises a buffer limit (SO_RCVBUF/SO_SNDBUF) to at least bytes; root may exceed the sysctl cap.
  void GrowBuffer(int force_opt, int opt, size_t bytes) {
    int want = static_cast<int>(std::min<size_t>(bytes, INT_MAX / 2));
    int have = 0;
    socklen_t len = sizeof have;
    // The kernel reports twice what was asked (its bookkeeping overhead).
    if (getsockopt(fd(), SOL_SOCKET, opt, &have, &len) == 0 && have / 2 >= want) return;
    if (setsockopt(fd(), SOL_SOCKET, force_opt, &want, sizeof want) != 0) setsockopt(fd(), SOL_SOCKET, opt, &want, sizeof want);
  }

  void Send(const void* buf, size_t len) {
    if (mnl_socket_sendto(sock_.get(), buf, len) < 0) Fail("cannot send to the kernel");
  }

  void SendIov(iovec* iov, size_t count) {
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    msghdr msg{};
    msg.msg_name = &kernel;
    msg.msg_namelen = sizeof kernel;
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    ssize_t sent;
    do {
      sent = sendmsg(fd(), &msg, 0);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0) Fail("cannot send the batch to the kernel");
  }

  // One datagram from the kernel; returns its length. With wait false, EAGAIN when none is queued.
  size_t Receive(bool wait = true) {
    sockaddr_nl from{};
    iovec iov{buf_.data(), buf_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
      ssize_t n = recvmsg(fd(), &msg, wait ? 0 : MSG_DONTWAIT);
      if (n >= 0) {
        // Only the kernel speaks for nftables; anything else reaching this port id is ignored.
        if (msg.msg_namelen != sizeof from || from.nl_pid != 0) {
          msg.msg_namelen = sizeof from;
          continue;
        }
        if (msg.msg_flags & MSG_TRUNC) throw KernelError(EMSGSIZE, object_, "a netlink reply was larger than the receive buffer");
        return static_cast<size_t>(n);
      }
      int err = errno;
      if (err == EINTR) continue;
      if (wait && (err == EAGAIN || err == EWOULDBLOCK)) throw KernelError(ETIMEDOUT, object_, "the kernel did not answer in 30 s");
      throw KernelError(err, object_, "cannot receive from the kernel: " + ErrnoText(err));
    }
  }

  const char* buffer() const { return buf_.data(); }

 private:
  std::string object_;
  Owned<mnl_socket> sock_;
  uint32_t seq_ = 0;
  // Larger than any dump datagram: the kernel fills them to at most 32 KiB.
  std::vector<char> buf_ = std::vector<char>(64 * 1024);
};

// The errno of an NLMSG_ERROR message (0 for an ack), or EPROTO when it is too short to say.
int ErrorOf(const nlmsghdr* nlh) {
  if (nlh->nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) return EPROTO;
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
  return -err->error;
}

// Sends one request and passes every reply message that belongs to it to on_message, until a dump
// ends (NLMSG_DONE) or, for a plain request, its reply or ack arrived. Returns false when the kernel
// flagged the dump as interrupted by a concurrent change (the messages are then incomplete).
template <class OnMessage>
bool Request(NftSocket& sock, nlmsghdr* req, const std::string& object, OnMessage on_message) {
  const bool dump = (req->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  const uint32_t seq = req->nlmsg_seq;
  sock.Send(req, req->nlmsg_len);
  bool consistent = true;
  for (;;) {
    size_t len = sock.Receive();
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(sock.buffer());
    int remaining = static_cast<int>(len);
    for (; mnl_nlmsg_ok(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_seq != seq) continue;  // a late answer to an earlier request
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) consistent = false;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        int err = ErrorOf(nlh);
        if (err != 0) throw KernelError(err, object, {}, NetlinkExtackMessage(nlh));
        return consistent;
      }
      if (nlh->nlmsg_type == NLMSG_DONE) {
        // A dump that failed midway says so here, as a negative errno.
        if (nlh->nlmsg_len >= NLMSG_HDRLEN + sizeof(int)) {
          int status;
          std::memcpy(&status, NLMSG_DATA(nlh), sizeof status);
          if (status < 0) throw KernelError(-status, object);
        }
        return consistent;
      }
      if (nlh->nlmsg_type < NLMSG_MIN_TYPE) continue;  // NOOP, OVERRUN
      on_message(nlh);
      if (!dump) return consistent;
    }
  }
}

// Iterates the attributes in [start, start + len).
template <class F>
void ForEachAttr(const void* start, size_t len, F fn) {
  const auto* attr = static_cast<const nlattr*>(start);
  int remaining = static_cast<int>(len);
  while (mnl_attr_ok(attr, remaining)) {
    fn(attr);
    remaining -= static_cast<int>(NLA_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
}

std::string AttrString(const nlattr* attr) {
  const char* p = static_cast<const char*>(mnl_attr_get_payload(attr));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(attr)));
}

// The NFTA_RULE_HANDLE of a rule message, if it has one.
std::optional<uint64_t> RuleHandle(const nlmsghdr* nlh) {
  const size_t header = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  if (nlh->nlmsg_len < header) return std::nullopt;
  std::optional<uint64_t> handle;
  ForEachAttr(reinterpret_cast<const char*>(nlh) + header, nlh->nlmsg_len - header, [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) == NFTA_RULE_HANDLE && mnl_attr_get_payload_len(attr) == sizeof(uint64_t)) {
      handle = be64toh(mnl_attr_get_u64(attr));
    }
  });
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Dump.

uint32_t ReadGeneration(NftSocket& sock) {
  char buf[kRequestBufferSize];
  nlmsghdr* req = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, 0, sock.NextSeq());
  std::optional<uint32_t> generation;
  Request(sock, req, "ruleset generation", [&](const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != NftType(NFT_MSG_NEWGEN)) return;
    auto gen = Check(nftnl_gen_alloc(), "ruleset generation", "a generation object");
    if (nftnl_gen_nlmsg_parse(nlh, gen.get()) < 0) throw KernelError(EPROTO, "ruleset generation", "cannot parse the kernel's reply");
    generation = nftnl_gen_get_u32(gen.get(), NFTNL_GEN_ID);
  });
  if (!generation) throw KernelError(EPROTO, "ruleset generation", "the kernel sent no generation");
  return *generation;
}

std::optional<NftBytes> TableUserdata(const nftnl_table* t) {
  if (!nftnl_table_is_set(t, NFTNL_TABLE_USERDATA)) return std::nullopt;
  uint32_t len = 0;
  const auto* p = static_cast<const uint8_t*>(nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len));
  if (p == nullptr) return std::nullopt;
  return NftBytes(p, p + len);
}

std::optional<NftBytes> ChainUserdata(const nftnl_chain* c) {
  if (!nftnl_chain_is_set(c, NFTNL_CHAIN_USERDATA)) return std::nullopt;
  uint32_t len = 0;
  const auto* p = static_cast<const uint8_t*>(nftnl_chain_get_data(c, NFTNL_CHAIN_USERDATA, &len));
  if (p == nullptr) return std::nullopt;
  return NftBytes(p, p + len);
}

std::optional<NftBytes> RuleUserdata(const nftnl_rule* r) {
  if (!nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) return std::nullopt;
  uint32_t len = 0;
  const auto* p = static_cast<const uint8_t*>(nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len));
  if (p == nullptr) return std::nullopt;
  return NftBytes(p, p + len);
}

std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

template <class T>
T Load(const void* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

size_t TypeSize(NftAttrType type) {
  switch (type) {
    case NftAttrType::kU8: return 1;
    case NftAttrType::kU16: return 2;
    case NftAttrType::kU32:
    case NftAttrType::kS32: return 4;
    case NftAttrType::kU64: return 8;
    default: return 0;
  }
}

NftExpr ExprFrom(const nftnl_expr* e) {
  NftExpr out;
  out.name = Str(nftnl_expr_get_str(e, NFTNL_EXPR_NAME));
  const auto* specs = AttrsOf(out.name);
  if (specs == nullptr) return out;
  for (const NftExprAttr* spec : *specs) {
    if (!nftnl_expr_is_set(e, spec->id)) continue;
    uint32_t len = 0;
    const void* p = nftnl_expr_get(e, spec->id, &len);
    if (p == nullptr) continue;
    NftAttr a;
    a.spec = spec;
    size_t want = TypeSize(spec->type);
    if (want != 0 && len != want) {
      // Not the size the table says: hand the bytes over rather than misread or drop them.
      a.raw = true;
      a.bytes.assign(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + len);
      out.attrs.push_back(std::move(a));
      continue;
    }
    switch (spec->type) {
      case NftAttrType::kU8: a.number = Load<uint8_t>(p); break;
      case NftAttrType::kU16: a.number = Load<uint16_t>(p); break;
      case NftAttrType::kU32: a.number = Load<uint32_t>(p); break;
      case NftAttrType::kS32: a.number = Load<int32_t>(p); break;
      case NftAttrType::kU64: a.u64 = Load<uint64_t>(p); break;
      case NftAttrType::kString: a.text.assign(static_cast<const char*>(p), strnlen(static_cast<const char*>(p), len)); break;
      case NftAttrType::kData:
      case NftAttrType::kXtInfo: a.bytes.assign(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + len); break;
    }
    out.attrs.push_back(std::move(a));
  }
  return out;
}

// One expression of a rule libnftnl could not parse as a whole: parsed on its own, wrapped in a
// rule message of its own, so that only the expression libnftnl does not know loses its attributes.
NftExpr ExprFromRawElement(const nlattr* elem) {
  NftExpr expr;
  ForEachAttr(mnl_attr_get_payload(elem), mnl_attr_get_payload_len(elem), [&](const nlattr* field) {
    if (mnl_attr_get_type(field) == NFTA_EXPR_NAME) expr.name = AttrString(field);
  });
  std::vector<char> buf(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)) + 2 * NLA_HDRLEN + NLA_ALIGN(elem->nla_len));
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = NftType(NFT_MSG_NEWRULE);
  mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg));
  nlattr* list = mnl_attr_nest_start(nlh, NFTA_RULE_EXPRESSIONS);
  mnl_attr_put(nlh, NFTA_LIST_ELEM, mnl_attr_get_payload_len(elem), mnl_attr_get_payload(elem));
  mnl_attr_nest_end(nlh, list);
  auto r = Check(nftnl_rule_alloc(), "rules", "a rule object");
  if (nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return expr;
  auto it = Check(nftnl_expr_iter_create(r.get()), "rules", "an expression iterator");
  nftnl_expr* e = nftnl_expr_iter_next(it.get());
  return e == nullptr ? expr : ExprFrom(e);
}

// A rule libnftnl cannot parse (an expression newer than the library): read straight from the
// message, each expression on its own.
NftRule RuleFromRawMessage(const nlmsghdr* nlh) {
  NftRule rule;
  const size_t header = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  if (nlh->nlmsg_len < header) return rule;
  rule.family = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family;
  ForEachAttr(reinterpret_cast<const char*>(nlh) + header, nlh->nlmsg_len - header, [&](const nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case NFTA_RULE_TABLE: rule.table = AttrString(attr); break;
      case NFTA_RULE_CHAIN: rule.chain = AttrString(attr); break;
      case NFTA_RULE_HANDLE:
        if (mnl_attr_get_payload_len(attr) == sizeof(uint64_t)) rule.handle = be64toh(mnl_attr_get_u64(attr));
        break;
      case NFTA_RULE_USERDATA: {
        const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(attr));
        rule.userdata = NftBytes(p, p + mnl_attr_get_payload_len(attr));
        break;
      }
      case NFTA_RULE_EXPRESSIONS:
        ForEachAttr(mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr),
                    [&](const nlattr* elem) { rule.exprs.push_back(ExprFromRawElement(elem)); });
        break;
      default: break;
    }
  });
  return rule;
}

}  // namespace

NftRule ParseNftRule(const nlmsghdr* nlh) {
  auto r = Check(nftnl_rule_alloc(), "rules", "a rule object");
  if (nftnl_rule_nlmsg_parse(nlh, r.get()) < 0) return RuleFromRawMessage(nlh);
  NftRule rule;
  rule.family = nftnl_rule_get_u32(r.get(), NFTNL_RULE_FAMILY);
  rule.table = Str(nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE));
  rule.chain = Str(nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN));
  rule.handle = nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE);
  rule.userdata = RuleUserdata(r.get());
  auto it = Check(nftnl_expr_iter_create(r.get()), "rules", "an expression iterator");
  for (nftnl_expr* e = nftnl_expr_iter_next(it.get()); e != nullptr; e = nftnl_expr_iter_next(it.get())) {
    rule.exprs.push_back(ExprFrom(e));
  }
  return rule;
}

namespace {

bool Selected(const NftDumpRequest& request, uint32_t family, std::string_view table) {
  if (request.family != NFPROTO_UNSPEC && family != request.family) return false;
  return !request.table || *request.table == table;
}

std::string_view AttrView(const nlattr* attr) {
  const char* p = static_cast<const char*>(mnl_attr_get_payload(attr));
  return std::string_view(p, strnlen(p, mnl_attr_get_payload_len(attr)));
}

// The verdict an immediate's NFTA_EXPR_DATA loads, if it loads one (not data into a register).
std::optional<int32_t> ImmediateVerdict(const nlattr* expr_data) {
  std::optional<int32_t> verdict;
  ForEachAttr(mnl_attr_get_payload(expr_data), mnl_attr_get_payload_len(expr_data), [&](const nlattr* imm) {
    if (mnl_attr_get_type(imm) != NFTA_IMMEDIATE_DATA) return;
    ForEachAttr(mnl_attr_get_payload(imm), mnl_attr_get_payload_len(imm), [&](const nlattr* data) {
      if (mnl_attr_get_type(data) != NFTA_DATA_VERDICT) return;
      ForEachAttr(mnl_attr_get_payload(data), mnl_attr_get_payload_len(data), [&](const nlattr* v) {
        if (mnl_attr_get_type(v) == NFTA_VERDICT_CODE && mnl_attr_get_payload_len(v) == sizeof(uint32_t)) {
          verdict = static_cast<int32_t>(ntohl(mnl_attr_get_u32(v)));
        }
      });
    });
  });
  return verdict;
}

// Sums one NFT_MSG_NEWRULE message into `sums`, read straight from its attributes: no libnftnl
// objects, no copies. `index` finds a chain's entry; rules arrive chain by chain, so it is rarely asked.
class CounterSummer {
 public:
  CounterSummer(const NftDumpRequest& request, std::vector<NftChainCounterSum>& sums)
      : request_(request), spec_(*request.counter_sums), sums_(sums) {}

  void Add(const nlmsghdr* nlh) {
    const size_t header = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
    if (nlh->nlmsg_len < header) return;
    const uint32_t family = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family;
    std::string_view table;
    std::string_view chain;
    const nlattr* exprs = nullptr;
    ForEachAttr(reinterpret_cast<const char*>(nlh) + header, nlh->nlmsg_len - header, [&](const nlattr* attr) {
      switch (mnl_attr_get_type(attr)) {
        case NFTA_RULE_TABLE: table = AttrView(attr); break;
        case NFTA_RULE_CHAIN: chain = AttrView(attr); break;
        case NFTA_RULE_EXPRESSIONS: exprs = attr; break;
        default: break;
      }
    });
    if (!Selected(request_, family, table)) return;
    NftChainCounterSum& sum = EntryFor(family, table, chain);
    if (exprs == nullptr) return;
    bool acts = false;
    bool counted = false;
    uint64_t packets = 0;
    uint64_t bytes = 0;
    ForEachAttr(mnl_attr_get_payload(exprs), mnl_attr_get_payload_len(exprs), [&](const nlattr* elem) {
      std::string_view name;
      const nlattr* data = nullptr;
      ForEachAttr(mnl_attr_get_payload(elem), mnl_attr_get_payload_len(elem), [&](const nlattr* field) {
        if (mnl_attr_get_type(field) == NFTA_EXPR_NAME) name = AttrView(field);
        if (mnl_attr_get_type(field) == NFTA_EXPR_DATA) data = field;
      });
      if (std::find(spec_.acting_exprs.begin(), spec_.acting_exprs.end(), name) != spec_.acting_exprs.end()) acts = true;
      if (data == nullptr) return;
      if (name == "immediate" && !acts) {
        std::optional<int32_t> verdict = ImmediateVerdict(data);
        if (verdict && std::find(spec_.acting_verdicts.begin(), spec_.acting_verdicts.end(), *verdict) != spec_.acting_verdicts.end()) acts = true;
      } else if (name == "counter" && !counted) {
        ForEachAttr(mnl_attr_get_payload(data), mnl_attr_get_payload_len(data), [&](const nlattr* c) {
          if (mnl_attr_get_payload_len(c) != sizeof(uint64_t)) return;
          if (mnl_attr_get_type(c) == NFTA_COUNTER_PACKETS) packets = be64toh(mnl_attr_get_u64(c));
          if (mnl_attr_get_type(c) == NFTA_COUNTER_BYTES) bytes = be64toh(mnl_attr_get_u64(c));
        });
        counted = true;
      }
    });
    if (!acts || !counted) return;
    sum.packets += packets;
    sum.bytes += bytes;
    ++sum.rules;
  }

 private:
  NftChainCounterSum& EntryFor(uint32_t family, std::string_view table, std::string_view chain) {
    if (!sums_.empty()) {
      NftChainCounterSum& last = sums_.back();
      if (last.family == family && last.table == table && last.chain == chain) return last;
    }
    auto key = std::make_tuple(family, std::string(table), std::string(chain));
    auto [it, added] = index_.emplace(key, sums_.size());
    if (added) {
      NftChainCounterSum sum;
      sum.family = family;
      sum.table = std::get<1>(key);
      sum.chain = std::get<2>(key);
      sums_.push_back(std::move(sum));
    }
    return sums_[it->second];
  }

  const NftDumpRequest& request_;
  const NftCounterSumsRequest& spec_;
  std::vector<NftChainCounterSum>& sums_;
  std::map<std::tuple<uint32_t, std::string, std::string>, size_t> index_;
};

// One attempt; false when the ruleset changed while it was being read.
bool TryDump(NftSocket& sock, const NftDumpRequest& request, NftDump& out) {
  out = NftDump{};
  out.generation = ReadGeneration(sock);
  char buf[kRequestBufferSize];
  const uint16_t family = static_cast<uint16_t>(request.family);
  bool consistent = true;

  nlmsghdr* req = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, family, NLM_F_DUMP, sock.NextSeq());
  consistent &= Request(sock, req, "tables", [&](const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != NftType(NFT_MSG_NEWTABLE)) return;
    auto t = Check(nftnl_table_alloc(), "tables", "a table object");
    if (nftnl_table_nlmsg_parse(nlh, t.get()) < 0) throw KernelError(EPROTO, "tables", "cannot parse a table the kernel sent");
    NftTable table;
    table.family = nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY);
    table.name = Str(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME));
    if (!Selected(request, table.family, table.name)) return;
    table.handle = nftnl_table_get_u64(t.get(), NFTNL_TABLE_HANDLE);
    table.flags = nftnl_table_get_u32(t.get(), NFTNL_TABLE_FLAGS);
    table.userdata = TableUserdata(t.get());
    out.tables.push_back(std::move(table));
  });

  req = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, family, NLM_F_DUMP, sock.NextSeq());
  consistent &= Request(sock, req, "chains", [&](const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != NftType(NFT_MSG_NEWCHAIN)) return;
    auto c = Check(nftnl_chain_alloc(), "chains", "a chain object");
    if (nftnl_chain_nlmsg_parse(nlh, c.get()) < 0) throw KernelError(EPROTO, "chains", "cannot parse a chain the kernel sent");
    NftChain chain;
    chain.family = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_FAMILY);
    chain.table = Str(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE));
    if (!Selected(request, chain.family, chain.table)) return;
    chain.name = Str(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME));
    chain.handle = nftnl_chain_get_u64(c.get(), NFTNL_CHAIN_HANDLE);
    if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM)) {
      chain.hook = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
      chain.priority = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
      if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_TYPE)) chain.type = Str(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE));
      if (nftnl_chain_is_set(c.get(), NFTNL_CHAIN_POLICY)) chain.policy = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_POLICY);
    }
    chain.userdata = ChainUserdata(c.get());
    out.chains.push_back(std::move(chain));
  });

  if (request.rules || request.counter_sums) {
    // The kernel filters a rule dump by table itself (tables and chains come back whole), but stops
    // at the first table of that name: across families the filtering is left to Selected().
    auto filter = Check(nftnl_rule_alloc(), "rules", "a rule object");
    if (request.table && request.family != NFPROTO_UNSPEC) nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, request.table->c_str());
    req = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, family, NLM_F_DUMP, sock.NextSeq());
    nftnl_rule_nlmsg_build_payload(req, filter.get());
    std::optional<CounterSummer> summer;
    if (request.counter_sums) summer.emplace(request, out.sums);
    consistent &= Request(sock, req, "rules", [&](const nlmsghdr* nlh) {
      if (nlh->nlmsg_type != NftType(NFT_MSG_NEWRULE)) return;
      if (summer) {
        summer->Add(nlh);
        return;
      }
      NftRule rule = ParseNftRule(nlh);
      if (Selected(request, rule.family, rule.table)) out.rules.push_back(std::move(rule));
    });
  }
  // Separate dumps are only a snapshot if nothing was committed between them.
  return consistent && ReadGeneration(sock) == out.generation;
}

// ---------------------------------------------------------------------------------------------
// Commit.

// XT_ALIGN: compat payloads are padded to it (libnftnl may send the padded length).
constexpr size_t XtAlign(size_t n) { return (n + 7) & ~size_t{7}; }

// An upper bound of an op's message size, so that the batch pages (which libnftnl fills without
// bounds checks) are always large enough.
size_t MessageBound(const NftOp& op) {
  size_t n = 256 + op.table.size() + op.chain.size() + (op.type ? op.type->size() : 0) + (op.userdata ? op.userdata->size() : 0);
  for (const NftExpr& e : op.exprs) {
    n += 64 + e.name.size();
    for (const NftAttr& a : e.attrs) n += 32 + a.text.size() + XtAlign(a.bytes.size());
  }
  return n;
}

std::string OpObject(const NftOp& op, size_t rule_ordinal) {
  std::string s = "table " + NftFamilyName(op.family) + " " + op.table;
  switch (op.kind) {
    case NftOpKind::kAddTable:
    case NftOpKind::kDeleteTable: return s;
    case NftOpKind::kAddChain:
    case NftOpKind::kDeleteChain: return s + " chain " + op.chain;
    case NftOpKind::kFlushChain: return s + " chain " + op.chain + " (every rule)";
    case NftOpKind::kAddRule: return s + " chain " + op.chain + " rule " + std::to_string(rule_ordinal);
    case NftOpKind::kDeleteRule: return s + " chain " + op.chain + " rule handle " + std::to_string(op.handle);
  }
  return s;
}

bool Has(const NftExpr& e, const char* key) {
  return std::any_of(e.attrs.begin(), e.attrs.end(), [&](const NftAttr& a) { return std::strcmp(a.spec->key, key) == 0; });
}

Owned<nftnl_expr> BuildExpr(const NftExpr& in, const std::string& object) {
  if (in.name == "immediate") {
    // libnftnl keeps data and verdict+chain in one union and frees the chain only along with a
    // verdict: data over a chain would free a wild pointer, a chain alone would leak.
    if (Has(in, "data") && (Has(in, "verdict") || Has(in, "chain"))) {
      throw KernelError(EINVAL, object, "an immediate expression loads data or a verdict, not both");
    }
    if (Has(in, "chain") && !Has(in, "verdict")) throw KernelError(EINVAL, object, "an immediate chain needs a verdict (jump or goto)");
  }
  auto e = Owned<nftnl_expr>(nftnl_expr_alloc(in.name.c_str()));
  if (!e) throw KernelError(EOPNOTSUPP, object, "libnftnl cannot build a \"" + in.name + "\" expression");
  for (const NftAttr& a : in.attrs) {
    const NftExprAttr& spec = *a.spec;
    int rc = 0;
    switch (spec.type) {
      case NftAttrType::kU8: nftnl_expr_set_u8(e.get(), spec.id, static_cast<uint8_t>(a.number)); break;
      case NftAttrType::kU16: nftnl_expr_set_u16(e.get(), spec.id, static_cast<uint16_t>(a.number)); break;
      case NftAttrType::kU32: nftnl_expr_set_u32(e.get(), spec.id, static_cast<uint32_t>(a.number)); break;
      case NftAttrType::kS32: nftnl_expr_set_u32(e.get(), spec.id, static_cast<uint32_t>(static_cast<int32_t>(a.number))); break;
      case NftAttrType::kU64: nftnl_expr_set_u64(e.get(), spec.id, a.u64); break;
      case NftAttrType::kString: rc = nftnl_expr_set_str(e.get(), spec.id, a.text.c_str()); break;
      case NftAttrType::kData:
        // libnftnl copies into a fixed value register without checking the length.
        if (a.bytes.size() > NFT_DATA_VALUE_MAXLEN) {
          throw KernelError(EINVAL, object, std::string(in.name) + " " + spec.key + " is " + std::to_string(a.bytes.size()) +
                                                " bytes, more than the " + std::to_string(NFT_DATA_VALUE_MAXLEN) + " a register holds");
        }
        rc = nftnl_expr_set(e.get(), spec.id, a.bytes.data(), static_cast<uint32_t>(a.bytes.size()));
        break;
      case NftAttrType::kXtInfo: {
        // libnftnl takes ownership of a compat payload (it frees it with the expression) and may
        // read it up to its padded length.
        void* copy = std::calloc(1, std::max<size_t>(XtAlign(a.bytes.size()), 8));
        if (copy == nullptr) throw KernelError(ENOMEM, object, "cannot allocate an xtables payload");
        if (!a.bytes.empty()) std::memcpy(copy, a.bytes.data(), a.bytes.size());
        rc = nftnl_expr_set(e.get(), spec.id, copy, static_cast<uint32_t>(a.bytes.size()));
        if (rc < 0) std::free(copy);
        break;
      }
    }
    if (rc < 0) throw KernelError(EINVAL, object, "libnftnl refused " + in.name + " " + spec.key);
  }
  return e;
}

// Appends one op's message (every one asks for an ack; with echo, an addRule also for its echo).
void AppendOp(nftnl_batch* batch, const NftOp& op, uint32_t seq, bool echo, const std::string& object) {
  char* buf = static_cast<char*>(nftnl_batch_buffer(batch));
  const uint16_t family = static_cast<uint16_t>(op.family);
  switch (op.kind) {
    case NftOpKind::kAddTable:
    case NftOpKind::kDeleteTable: {
      auto t = Check(nftnl_table_alloc(), object, "a table object");
      nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, op.family);
      nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, op.table.c_str());
      if (op.kind == NftOpKind::kAddTable && op.userdata) {
        nftnl_table_set_data(t.get(), NFTNL_TABLE_USERDATA, op.userdata->data(), static_cast<uint32_t>(op.userdata->size()));
      }
      const bool add = op.kind == NftOpKind::kAddTable;
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, add ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE, family,
                                            static_cast<uint16_t>((add ? NLM_F_CREATE : 0) | NLM_F_ACK), seq);
      nftnl_table_nlmsg_build_payload(nlh, t.get());
      break;
    }
    case NftOpKind::kAddChain:
    case NftOpKind::kDeleteChain: {
      auto c = Check(nftnl_chain_alloc(), object, "a chain object");
      nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, op.family);
      nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, op.table.c_str());
      nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, op.chain.c_str());
      const bool add = op.kind == NftOpKind::kAddChain;
      if (add && op.hook) {
        nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, *op.hook);
        nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, op.priority.value_or(0));
        if (op.type) nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, op.type->c_str());
        if (op.policy) nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, *op.policy);
      }
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, add ? NFT_MSG_NEWCHAIN : NFT_MSG_DELCHAIN, family,
                                            static_cast<uint16_t>((add ? NLM_F_CREATE : 0) | NLM_F_ACK), seq);
      nftnl_chain_nlmsg_build_payload(nlh, c.get());
      break;
    }
    case NftOpKind::kFlushChain:
    case NftOpKind::kDeleteRule: {
      auto r = Check(nftnl_rule_alloc(), object, "a rule object");
      nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, op.family);
      nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, op.table.c_str());
      nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, op.chain.c_str());
      // Without a handle, DELRULE deletes every rule of the chain.
      if (op.kind == NftOpKind::kDeleteRule) nftnl_rule_set_u64(r.get(), NFTNL_RULE_HANDLE, op.handle);
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_DELRULE, family, NLM_F_ACK, seq);
      nftnl_rule_nlmsg_build_payload(nlh, r.get());
      break;
    }
    case NftOpKind::kAddRule: {
      auto r = Check(nftnl_rule_alloc(), object, "a rule object");
      nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, op.family);
      nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, op.table.c_str());
      nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, op.chain.c_str());
      if (op.position) nftnl_rule_set_u64(r.get(), NFTNL_RULE_POSITION, *op.position);
      if (op.userdata) {
        nftnl_rule_set_data(r.get(), NFTNL_RULE_USERDATA, op.userdata->data(), static_cast<uint32_t>(op.userdata->size()));
      }
      for (const NftExpr& e : op.exprs) nftnl_rule_add_expr(r.get(), BuildExpr(e, object).release());
      // APPEND with a position: after that rule; without: at the end of the chain.
      const uint16_t flags = static_cast<uint16_t>(NLM_F_APPEND | NLM_F_CREATE | NLM_F_ACK | (echo ? NLM_F_ECHO : 0));
      nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, family, flags, seq);
      nftnl_rule_nlmsg_build_payload(nlh, r.get());
      break;
    }
  }
  if (nftnl_batch_update(batch) < 0) throw KernelError(ENOMEM, object, "cannot grow the batch");
}

struct OpFailure {
  size_t index = 0;
  int err = 0;
  std::string extack;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

const std::vector<NftExprAttr>& NftExprAttrs() { return kAttrs; }

const NftExprAttr* FindNftExprAttr(const std::string& expr, const std::string& key) {
  const auto* specs = AttrsOf(expr);
  if (specs == nullptr) return nullptr;
  for (const NftExprAttr* a : *specs) {
    if (key == a->key) return a;
  }
  return nullptr;
}

bool IsKnownNftExpr(const std::string& expr) { return AttrsOf(expr) != nullptr; }

std::string NftExprAttrKeys(const std::string& expr) {
  const auto* specs = AttrsOf(expr);
  if (specs == nullptr || specs->empty()) return "none";
  std::string out;
  for (const NftExprAttr* a : *specs) out += (out.empty() ? "" : ", ") + std::string(a->key);
  return out;
}

std::string NftFamilyName(uint32_t family) {
  switch (family) {
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_INET: return "inet";
    case NFPROTO_ARP: return "arp";
    case NFPROTO_BRIDGE: return "bridge";
    case NFPROTO_NETDEV: return "netdev";
    default: return "family " + std::to_string(family);
  }
}

const char* NftOpName(NftOpKind kind) {
  switch (kind) {
    case NftOpKind::kAddTable: return "addTable";
    case NftOpKind::kDeleteTable: return "deleteTable";
    case NftOpKind::kAddChain: return "addChain";
    case NftOpKind::kDeleteChain: return "deleteChain";
    case NftOpKind::kFlushChain: return "flushChain";
    case NftOpKind::kAddRule: return "addRule";
    case NftOpKind::kDeleteRule: return "deleteRule";
  }
  return "?";
}

NftDump DumpNftables(const NftDumpRequest& request) {
  std::string object = "ruleset";
  if (request.family != NFPROTO_UNSPEC) object += " " + NftFamilyName(request.family);
  if (request.table) object += " table " + *request.table;
  NftSocket sock(object);
  const uint64_t cookie = sock.NetnsCookie();
  NftDump out;
  for (int attempt = 0; attempt < kMaxNftDumpAttempts; ++attempt) {
    if (TryDump(sock, request, out)) {
      out.netns_cookie = cookie;
      return out;
    }
  }
  throw KernelError(EINTR, object,
                    "the ruleset changed during each of " + std::to_string(kMaxNftDumpAttempts) + " attempts to read it");
}

NftGeneration ReadNftGeneration() {
  NftSocket sock("ruleset generation");
  NftGeneration out;
  out.netns_cookie = sock.NetnsCookie();
  out.generation = ReadGeneration(sock);
  return out;
}

NftCommitResult CommitNftables(const NftCommitRequest& request) {
  const size_t n = request.ops.size();
  const std::string batch_object = "nftables batch of " + std::to_string(n) + (n == 1 ? " op" : " ops");
  NftCommitResult result;
  if (n == 0) {
    // An empty batch would only bump the generation: nothing is sent.
    result.netns_cookie = NftSocket(batch_object).NetnsCookie();
    return result;
  }

  // Objects for error messages, and the largest message the batch pages must hold.
  std::vector<std::string> objects;
  objects.reserve(n);
  std::map<std::string, size_t> rules_per_chain;
  size_t largest = 0;
  for (const NftOp& op : request.ops) {
    size_t ordinal = 0;
    if (op.kind == NftOpKind::kAddRule) ordinal = ++rules_per_chain[NftFamilyName(op.family) + " " + op.table + " " + op.chain];
    objects.push_back(OpObject(op, ordinal));
    size_t bound = MessageBound(op);
    // Expressions nest in one attribute, whose length is 16 bits.
    if (bound > 0xffff) throw KernelError(E2BIG, objects.back(), "the rule does not fit in one netlink message");
    largest = std::max(largest, bound);
  }

  NftSocket sock(batch_object);
  // Read before the send: once the batch is applied, nothing may fail for want of it.
  result.netns_cookie = sock.NetnsCookie();
  const size_t overrun = std::max<size_t>(largest, kRequestBufferSize);
  auto batch = Check(nftnl_batch_alloc(static_cast<uint32_t>(std::max<size_t>(overrun, 128 * 1024)), static_cast<uint32_t>(overrun)),
                     batch_object, "a batch");

  const uint32_t begin_seq = sock.NextSeq();
  nlmsghdr* begin = nftnl_batch_begin(static_cast<char*>(nftnl_batch_buffer(batch.get())), begin_seq);
  if (request.generation) mnl_attr_put_u32(begin, NFNL_BATCH_GENID, htonl(*request.generation));
  if (nftnl_batch_update(batch.get()) < 0) throw KernelError(ENOMEM, batch_object, "cannot grow the batch");
  const uint32_t first_op_seq = begin_seq + 1;
  // With echo, rule_slot maps an addRule op's index to its place in result.handles.
  std::vector<size_t> rule_slot;
  if (request.echo) {
    rule_slot.assign(n, SIZE_MAX);
    for (size_t i = 0; i < n; ++i) {
      if (request.ops[i].kind != NftOpKind::kAddRule) continue;
      rule_slot[i] = result.handles.size();
      result.handles.push_back(0);
    }
  }
  const size_t rules = result.handles.size();
  for (size_t i = 0; i < n; ++i) AppendOp(batch.get(), request.ops[i], sock.NextSeq(), request.echo, objects[i]);
  nftnl_batch_end(static_cast<char*>(nftnl_batch_buffer(batch.get())), sock.NextSeq());
  if (nftnl_batch_update(batch.get()) < 0) throw KernelError(ENOMEM, batch_object, "cannot grow the batch");

  const int pages = nftnl_batch_iovec_len(batch.get());
  std::vector<iovec> iov(static_cast<size_t>(pages));
  nftnl_batch_iovec(batch.get(), iov.data(), static_cast<uint32_t>(pages));
  size_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  // The whole batch is one datagram, and every ack (and echo) is queued before the send returns:
  // both buffers must hold all of it (the kernel counts about 1 KiB per queued ack; an echoed rule
  // is about as large as the message that created it).
  sock.GrowBuffer(SO_SNDBUFFORCE, SO_SNDBUF, total + 64 * 1024);
  sock.GrowBuffer(SO_RCVBUFFORCE, SO_RCVBUF, (request.echo ? total : 0) + n * 2048 + 128 * 1024);
  sock.SendIov(iov.data(), iov.size());

  std::optional<OpFailure> failure;
  size_t acked = 0;
  std::vector<bool> echoed(rules, false);
  size_t echoes = 0;
  // The kernel sends the echoes as it commits, before the acks; a failed batch echoes nothing.
  while (acked < n || (!failure && echoes < rules)) {
    size_t len;
    try {
      // The kernel runs the whole batch inside the send, so every answer is already queued: one
      // missing now never comes.
      len = sock.Receive(false);
    } catch (const KernelError& e) {
      if (e.err() == ENOBUFS) {
        throw KernelError(ENOBUFS, batch_object,
                          std::string(request.echo ? "acknowledgements or echoed rules" : "acknowledgements") +
                              " were lost (receive buffer overrun): whether the batch was applied is unknown");
      }
      if ((e.err() == EAGAIN || e.err() == EWOULDBLOCK) && acked < n) {
        throw KernelError(EPROTO, batch_object, "the kernel acknowledged " + std::to_string(acked) + " of " + std::to_string(n) + " ops");
      }
      if (e.err() == EAGAIN || e.err() == EWOULDBLOCK) {
        throw KernelError(EPROTO, batch_object,
                          "the batch was applied, but the kernel echoed " + std::to_string(echoes) + " of " + std::to_string(rules) +
                              " added rules: their handles are unknown");
      }
      throw;
    }
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(sock.buffer());
    int remaining = static_cast<int>(len);
    for (; mnl_nlmsg_ok(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
      if (nlh->nlmsg_type == NftType(NFT_MSG_NEWRULE) && rules > 0) {
        // An echo carries the seq of the op that created the rule.
        if (nlh->nlmsg_seq < first_op_seq || nlh->nlmsg_seq >= first_op_seq + n) continue;
        const size_t index = nlh->nlmsg_seq - first_op_seq;
        const size_t slot = rule_slot[index];
        if (slot == SIZE_MAX || echoed[slot]) continue;
        const std::optional<uint64_t> handle = RuleHandle(nlh);
        if (!handle) throw KernelError(EPROTO, objects[index], "the batch was applied, but the kernel echoed the rule without its handle");
        result.handles[slot] = *handle;
        echoed[slot] = true;
        ++echoes;
        continue;
      }
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      const int err = ErrorOf(nlh);
      if (nlh->nlmsg_seq == begin_seq) {
        // The batch as a whole: refused before any op ran (stale generation, no permission) or
        // its commit failed. Either way nothing changed.
        if (err == ERESTART && request.generation) {
          throw KernelError(ERESTART, "ruleset",
                            "generation " + std::to_string(*request.generation) +
                                " is no longer current: the ruleset changed since it was read; read it again and retry",
                            NetlinkExtackMessage(nlh));
        }
        throw KernelError(err != 0 ? err : EPROTO, batch_object, {}, NetlinkExtackMessage(nlh));
      }
      if (nlh->nlmsg_seq < first_op_seq || nlh->nlmsg_seq >= first_op_seq + n) continue;
      ++acked;
      const size_t index = nlh->nlmsg_seq - first_op_seq;
      // Later ops often fail only because an earlier one did: the first is the cause.
      if (err != 0 && (!failure || index < failure->index)) failure = OpFailure{index, err, NetlinkExtackMessage(nlh)};
    }
  }
  if (failure) {
    const NftOp& op = request.ops[failure->index];
    throw KernelError(failure->err, objects[failure->index],
                      std::string(NftOpName(op.kind)) + " (op " + std::to_string(failure->index + 1) + " of " + std::to_string(n) +
                          ") failed, so the batch was not applied: " + ErrnoText(failure->err),
                      failure->extack);
  }
  return result;
}

}  // namespace nodenet
