// Link notifications: RTM_NEWLINK / RTM_DELLINK from rtnetlink's RTNLGRP_LINK multicast group, in
// one network namespace, read on a thread of the monitor's own.
//
// A consumer learns that a pod's sandbox was re-created (a new veth under the same pod) or that a
// link went away without listing links on a timer. Notifications are lossy by nature: when the
// socket's receive buffer overruns, the kernel drops messages and says only that it did (ENOBUFS).
// The monitor turns that, and its own bounded queue filling up, into an overflow event, after which
// the consumer must list links again to learn the current state.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "error.h"
#include "fd.h"

namespace nodenet {

struct LinkEvent {
  enum class Type {
    kNew,       // RTM_NEWLINK: a link appeared, or one changed (flags, name, master, namespace id)
    kDel,       // RTM_DELLINK: a link was deleted or moved to another namespace
    kOverflow,  // messages were lost; the fields below are unset
  };
  Type type = Type::kNew;
  int index = 0;
  std::string name;       // IFLA_IFNAME
  std::string kind;       // IFLA_LINKINFO/IFLA_INFO_KIND, empty when absent (loopback, hardware)
  uint32_t flags = 0;     // ifi_flags (IFF_*)
  int link_index = 0;     // IFLA_LINK, 0 when absent
  int link_netnsid = -1;  // IFLA_LINK_NETNSID, -1 when absent
  int master = 0;         // IFLA_MASTER, 0 when absent
};

// Decodes the link messages of one datagram read from an RTNLGRP_LINK socket. Messages that are not
// RTM_NEWLINK/RTM_DELLINK of family AF_UNSPEC, or are too short, are skipped. Exposed for tests.
std::vector<LinkEvent> DecodeLinkMessages(const void* data, size_t len);

class LinkMonitor {
 public:
  // Called on the monitor's thread when its queue goes from empty to non-empty, or when the thread
  // ends with an error. Must not block: it only tells someone to call Drain().
  using Ready = std::function<void()>;

  struct Pending {
    std::vector<LinkEvent> events;
    // Set once, when the reader stopped on an error it cannot go on from. No events follow it.
    std::unique_ptr<KernelError> error;
  };

  // Opens a NETLINK_ROUTE socket in the namespace at netns (the calling thread's own when empty),
  // joins RTNLGRP_LINK and starts the reader thread. Events that happen after the constructor
  // returns are reported. Throws KernelError (ENOENT when the namespace file is missing, EPERM
  // without CAP_SYS_ADMIN to enter it).
  LinkMonitor(const std::string& netns, Ready ready);
  LinkMonitor(const LinkMonitor&) = delete;
  LinkMonitor& operator=(const LinkMonitor&) = delete;
  // Stops and joins the reader.
  ~LinkMonitor();

  // Any thread: takes what is queued. Events keep their kernel order.
  Pending Drain();

  // Any thread but the reader's (it joins it). Idempotent. After it returns, ready is never called
  // again; events still queued are dropped.
  void Stop();

  // Events the queue holds at most before it reports an overflow instead of growing.
  static constexpr size_t kMaxQueued = 4096;

 private:
  void Run();
  // Reads until the socket is empty. False when the reader must end (the error is queued).
  bool ReadAll(uint32_t* buffer);
  void Push(std::vector<LinkEvent> events);
  void PushOverflow();
  void Fail(int err, const std::string& detail);

  UniqueFd sock_;
  UniqueFd stop_;  // eventfd: poll() on it wakes the reader so Stop() can join it
  Ready ready_;
  std::atomic<bool> stopping_{false};

  std::mutex mu_;
  Pending pending_;  // guarded by mu_
  bool stopped_ = false;  // guarded by mu_: Stop() ran; nothing is queued or signalled after it

  std::mutex stop_mu_;  // serialises Stop() callers around the join
  std::thread reader_;
};

}  // namespace nodenet
