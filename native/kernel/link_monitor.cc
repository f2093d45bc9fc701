#include "link_monitor.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <future>
#include <new>
#include <optional>
#include <system_error>

#include "netns.h"

namespace nodenet {

namespace {

constexpr const char* kObject = "link notifications";

// What the socket may hold while the reader is behind: `ip monitor` asks for 1 MiB; a node that
// re-creates many pods at once (a runtime restart) sends a few KiB per link per change, so allow
// for a burst of some thousand notifications before the kernel drops them and says ENOBUFS.
constexpr int kReceiveBuffer = 4 << 20;

// One datagram carries one notification of at most a few KiB (more with many VFs); anything that
// does not fit is lost and reported as an overflow.
constexpr size_t kDatagramBuffer = 64 << 10;

[[noreturn]] void ThrowErrno(int err, const std::string& what) {
  throw KernelError(err, kObject, what + ": " + ErrnoText(err));
}

UniqueFd OpenSocket() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!fd.valid()) ThrowErrno(errno, "cannot open a netlink socket");
  // SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN; without it the smaller buffer
  // only means overflows come sooner, which the consumer handles anyway.
  int size = kReceiveBuffer;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  // Joining a group does not bind, and an unbound socket has port id 0, the kernel's own, which
  // multicast delivery skips as the sender: bind first and let the kernel choose the id.
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ThrowErrno(errno, "cannot bind a netlink socket");
  int group = RTNLGRP_LINK;
  if (::setsockopt(fd.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
    ThrowErrno(errno, "cannot join RTNLGRP_LINK");
  }
  return fd;
}

// Like nla_parse without a policy: the first attribute of each type up to max, the rest ignored.
void ParseAttributes(const rtattr* rta, int len, const rtattr** table, int max) {
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    int type = rta->rta_type & NLA_TYPE_MASK;
    if (type <= max && table[type] == nullptr) table[type] = rta;
  }
}

std::optional<uint32_t> U32(const rtattr* rta) {
  if (rta == nullptr || RTA_PAYLOAD(rta) < sizeof(uint32_t)) return std::nullopt;
  uint32_t v;
  std::memcpy(&v, RTA_DATA(rta), sizeof v);
  return v;
}

std::string String(const rtattr* rta) {
  if (rta == nullptr) return {};
  const auto* s = static_cast<const char*>(RTA_DATA(rta));
  return std::string(s, strnlen(s, RTA_PAYLOAD(rta)));
}

class BlockSignals {
 public:
  BlockSignals() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old_);
  }
  BlockSignals(const BlockSignals&) = delete;
  BlockSignals& operator=(const BlockSignals&) = delete;
  ~BlockSignals() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

LinkEvent OverflowEvent() {
  LinkEvent e;
  e.type = LinkEvent::Type::kOverflow;
  return e;
}

}  // namespace

std::vector<LinkEvent> DecodeLinkMessages(const void* data, size_t len) {
  std::vector<LinkEvent> events;
  // NLMSG_OK compares the remaining length as an int.
  int left = static_cast<int>(std::min(len, static_cast<size_t>(INT32_MAX)));
  for (auto* nlh = static_cast<const nlmsghdr*>(data); NLMSG_OK(nlh, left); nlh = NLMSG_NEXT(nlh, left)) {
    if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) continue;
    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) continue;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(nlh));
    // The bridge reports port changes to the same group with family AF_BRIDGE, and sends an
    // RTM_DELLINK of that family when a port merely leaves its bridge: not a link going away.
    if (ifi->ifi_family != AF_UNSPEC) continue;
    const rtattr* tb[IFLA_MAX + 1] = {};
    ParseAttributes(IFLA_RTA(ifi), static_cast<int>(IFLA_PAYLOAD(nlh)), tb, IFLA_MAX);

    LinkEvent e;
    e.type = nlh->nlmsg_type == RTM_NEWLINK ? LinkEvent::Type::kNew : LinkEvent::Type::kDel;
    e.index = ifi->ifi_index;
    e.flags = ifi->ifi_flags;
    e.name = String(tb[IFLA_IFNAME]);
    if (tb[IFLA_LINKINFO] != nullptr) {
      const rtattr* info[IFLA_INFO_MAX + 1] = {};
      ParseAttributes(static_cast<const rtattr*>(RTA_DATA(tb[IFLA_LINKINFO])), static_cast<int>(RTA_PAYLOAD(tb[IFLA_LINKINFO])), info,
                      IFLA_INFO_MAX);
      e.kind = String(info[IFLA_INFO_KIND]);
    }
    if (auto v = U32(tb[IFLA_LINK])) e.link_index = static_cast<int>(*v);
    if (auto v = U32(tb[IFLA_LINK_NETNSID])) e.link_netnsid = static_cast<int32_t>(*v);
    if (auto v = U32(tb[IFLA_MASTER])) e.master = static_cast<int>(*v);
    events.push_back(std::move(e));
  }
  return events;
}

LinkMonitor::LinkMonitor(const std::string& netns, Ready ready) : ready_(std::move(ready)) {
  stop_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_.valid()) ThrowErrno(errno, "cannot create an eventfd");

  // The socket is opened on the reader thread, which enters the namespace only for that, so no
  // caller's thread (Node's main thread in particular) ever leaves its own namespace.
  std::promise<void> opened;
  std::future<void> result = opened.get_future();
  try {
    // The reader must not take process signals meant for Node's main thread; it inherits the mask.
    BlockSignals block;
    // The promise moves into the thread: the constructor may return (and would destroy it) the
    // moment set_value() wakes it.
    reader_ = std::thread([this, netns, opened = std::move(opened)]() mutable {
      pthread_setname_np(pthread_self(), "nodenet-links");
      try {
        std::optional<NetnsGuard> guard;
        if (!netns.empty()) guard.emplace(netns);
        sock_ = OpenSocket();
      } catch (...) {
        opened.set_exception(std::current_exception());
        return;
      }
      opened.set_value();
      Run();
    });
  } catch (const std::system_error& e) {
    throw KernelError(e.code().value(), kObject, std::string("cannot start the reader thread: ") + e.what());
  }
  try {
    result.get();
  } catch (...) {
    reader_.join();
    throw;
  }
}

LinkMonitor::~LinkMonitor() { Stop(); }

void LinkMonitor::Stop() {
  std::lock_guard<std::mutex> serial(stop_mu_);
  if (reader_.joinable()) {
    stopping_ = true;
    uint64_t one = 1;
    // Cannot fail short of a counter overflow; the reader also checks stopping_ between reads.
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof one);
    reader_.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  pending_ = Pending{};
}

LinkMonitor::Pending LinkMonitor::Drain() {
  std::lock_guard<std::mutex> lock(mu_);
  Pending out = std::move(pending_);
  pending_ = Pending{};
  return out;
}

void LinkMonitor::Push(std::vector<LinkEvent> events) {
  if (events.empty()) return;
  bool signal = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    signal = pending_.events.empty() && !pending_.error;
    for (auto& e : events) {
      // One slot is kept for the overflow marker.
      if (pending_.events.size() + 1 >= kMaxQueued) {
        if (pending_.events.back().type != LinkEvent::Type::kOverflow) pending_.events.push_back(OverflowEvent());
        break;
      }
      pending_.events.push_back(std::move(e));
    }
  }
  if (signal) ready_();
}

void LinkMonitor::PushOverflow() {
  bool signal = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    signal = pending_.events.empty() && !pending_.error;
    if (pending_.events.empty() || pending_.events.back().type != LinkEvent::Type::kOverflow) {
      pending_.events.push_back(OverflowEvent());
    }
  }
  if (signal) ready_();
}

void LinkMonitor::Fail(int err, const std::string& detail) {
  bool signal = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    signal = pending_.events.empty();
    pending_.error = std::make_unique<KernelError>(err, kObject, detail + ": " + ErrnoText(err));
  }
  if (signal) ready_();
}

void LinkMonitor::Run() {
  // nlmsghdr needs 4-byte alignment.
  static_assert(kDatagramBuffer % sizeof(uint32_t) == 0);
  std::unique_ptr<uint32_t[]> buffer(new (std::nothrow) uint32_t[kDatagramBuffer / sizeof(uint32_t)]);
  if (!buffer) {
    Fail(ENOMEM, "cannot allocate a receive buffer");
    return;
  }
  for (;;) {
    pollfd fds[2] = {{sock_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Fail(errno, "cannot wait for notifications");
      return;
    }
    if (stopping_ || fds[1].revents != 0) return;
    // POLLERR is how a pending ENOBUFS shows; the read below reports it.
    if (fds[0].revents & (POLLIN | POLLERR)) {
      if (!ReadAll(buffer.get())) return;
    } else if (fds[0].revents & (POLLHUP | POLLNVAL)) {
      Fail(EPIPE, "the netlink socket closed");
      return;
    }
  }
}

bool LinkMonitor::ReadAll(uint32_t* buffer) {
  while (!stopping_) {
    sockaddr_nl from{};
    iovec iov{buffer, kDatagramBuffer};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = ::recvmsg(sock_.get(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return true;
      if (err == ENOBUFS) {
        PushOverflow();
        continue;
      }
      Fail(err, "cannot read notifications");
      return false;
    }
    if (msg.msg_flags & MSG_TRUNC) {
      PushOverflow();
      continue;
    }
    // Only the kernel speaks for the namespace's links; a privileged process could send to the
    // group too.
    if (from.nl_pid != 0) continue;
    Push(DecodeLinkMessages(buffer, static_cast<size_t>(n)));
  }
  return true;
}

}  // namespace nodenet
