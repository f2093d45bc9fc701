#include "../kernel/link_monitor.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "../kernel/error.h"
#include "../kernel/fd.h"
#include "../kernel/netns.h"
#include "test_netns.h"

namespace nodenet {
namespace {

// Builds rtnetlink link messages the way the kernel lays them out.
class MessageBuilder {
 public:
  void Begin(uint16_t type, unsigned char family, int index, unsigned flags) {
    start_ = bytes_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    Append(&h, sizeof h);
    ifinfomsg ifi{};
    ifi.ifi_family = family;
    ifi.ifi_index = index;
    ifi.ifi_flags = flags;
    Append(&ifi, sizeof ifi);
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    rtattr a{};
    a.rta_type = type;
    a.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    Append(&a, sizeof a);
    Append(data, len);
    Pad();
  }
  void U32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof v); }
  void Str(uint16_t type, const char* s) { Attr(type, s, std::strlen(s) + 1); }
  size_t Nest(uint16_t type) {
    size_t at = bytes_.size();
    rtattr a{};
    a.rta_type = type;
    Append(&a, sizeof a);
    return at;
  }
  void EndNest(size_t at) {
    auto len = static_cast<unsigned short>(bytes_.size() - at);
    std::memcpy(bytes_.data() + at, &len, sizeof len);
  }
  void End() {
    auto len = static_cast<uint32_t>(bytes_.size() - start_);
    std::memcpy(bytes_.data() + start_, &len, sizeof len);
  }
  std::vector<uint32_t> Words() const {
    std::vector<uint32_t> w(bytes_.size() / 4);
    std::memcpy(w.data(), bytes_.data(), bytes_.size());
    return w;
  }
  size_t size() const { return bytes_.size(); }

 private:
  void Append(const void* p, size_t n) {
    const auto* c = static_cast<const char*>(p);
    bytes_.insert(bytes_.end(), c, c + n);
  }
  void Pad() { bytes_.resize(RTA_ALIGN(bytes_.size())); }
  std::vector<char> bytes_;
  size_t start_ = 0;
};

TEST(DecodeLinkMessages, EveryField) {
  MessageBuilder b;
  b.Begin(RTM_NEWLINK, AF_UNSPEC, 7, IFF_UP | IFF_BROADCAST);
  b.Str(IFLA_IFNAME, "veth1234");
  b.U32(IFLA_LINK, 2);
  b.U32(IFLA_LINK_NETNSID, 0);
  b.U32(IFLA_MASTER, 5);
  size_t info = b.Nest(IFLA_LINKINFO);
  b.Str(IFLA_INFO_KIND, "veth");
  b.EndNest(info);
  b.End();
  // A bridge port notice, a message too short for ifinfomsg and an address message are skipped.
  b.Begin(RTM_DELLINK, AF_BRIDGE, 7, 0);
  b.Str(IFLA_IFNAME, "veth1234");
  b.End();
  b.Begin(RTM_DELLINK, AF_UNSPEC, 9, 0);
  b.Str(IFLA_IFNAME, "gone0");
  b.End();
  auto words = b.Words();
  std::vector<LinkEvent> events = DecodeLinkMessages(words.data(), b.size());
  ASSERT_EQ(events.size(), 2u);
  const LinkEvent& e = events[0];
  EXPECT_EQ(e.type, LinkEvent::Type::kNew);
  EXPECT_EQ(e.index, 7);
  EXPECT_EQ(e.name, "veth1234");
  EXPECT_EQ(e.kind, "veth");
  EXPECT_EQ(e.flags, static_cast<uint32_t>(IFF_UP | IFF_BROADCAST));
  EXPECT_EQ(e.link_index, 2);
  EXPECT_EQ(e.link_netnsid, 0);
  EXPECT_EQ(e.master, 5);
  EXPECT_EQ(events[1].type, LinkEvent::Type::kDel);
  EXPECT_EQ(events[1].name, "gone0");
  EXPECT_EQ(events[1].kind, "");
  EXPECT_EQ(events[1].link_index, 0);
  EXPECT_EQ(events[1].link_netnsid, -1);
  EXPECT_EQ(events[1].master, 0);
}

TEST(DecodeLinkMessages, TruncatedInputYieldsWhatIsWhole) {
  MessageBuilder b;
  b.Begin(RTM_NEWLINK, AF_UNSPEC, 1, 0);
  b.Str(IFLA_IFNAME, "lo");
  b.End();
  auto words = b.Words();
  EXPECT_EQ(DecodeLinkMessages(words.data(), b.size()).size(), 1u);
  EXPECT_TRUE(DecodeLinkMessages(words.data(), b.size() - 4).empty());
  EXPECT_TRUE(DecodeLinkMessages(words.data(), NLMSG_HDRLEN).empty());
}

// Collects a monitor's events on the test thread.
class Collector {
 public:
  LinkMonitor::Ready Ready() {
    return [this] {
      std::lock_guard<std::mutex> lock(mu_);
      ++wakes_;
      cv_.notify_all();
    };
  }
  // Drains until an event matches or the guard time passes.
  bool WaitFor(LinkMonitor& m, LinkEvent::Type type, const std::string& name, LinkEvent* out) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      LinkMonitor::Pending p = m.Drain();
      if (p.error) ADD_FAILURE() << p.error->Message();
      for (auto& e : p.events) {
        if (e.type == type && e.name == name) {
          *out = e;
          return true;
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      size_t seen = wakes_;
      if (!cv_.wait_until(lock, deadline, [&] { return wakes_ != seen; })) return false;
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t wakes_ = 0;
};

void SetLoopbackUp(const std::string& netns, bool up) {
  NetnsGuard guard(netns);
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), 0);
  ifr.ifr_flags = static_cast<short>(up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP));
  ASSERT_EQ(::ioctl(s.get(), SIOCSIFFLAGS, &ifr), 0);
}

TEST(LinkMonitor, SeesAChangeAndStops) {
  testing::ScratchNetns watched;
  ASSERT_TRUE(watched.ok()) << "unshare(CLONE_NEWNET) needs root";
  ino_t home = CurrentThreadNetnsInode();
  Collector c;
  LinkMonitor monitor(watched.path(), c.Ready());
  EXPECT_EQ(CurrentThreadNetnsInode(), home) << "the caller's thread never left its namespace";

  SetLoopbackUp(watched.path(), true);
  LinkEvent e;
  ASSERT_TRUE(c.WaitFor(monitor, LinkEvent::Type::kNew, "lo", &e));
  EXPECT_EQ(e.index, 1);
  EXPECT_NE(e.flags & IFF_UP, 0u);
  monitor.Stop();
  monitor.Stop();
  SetLoopbackUp(watched.path(), false);
  EXPECT_TRUE(monitor.Drain().events.empty()) << "nothing is queued after Stop()";
}

TEST(LinkMonitor, MissingNamespaceIsENOENT) {
  try {
    LinkMonitor monitor("/nonexistent/netns", [] {});
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(e.object(), "netns /nonexistent/netns");
  }
}

TEST(LinkMonitor, DestroyedWhileIdle) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  // The reader is blocked in poll(); the destructor must wake and join it.
  LinkMonitor monitor(scratch.path(), [] {});
}

}  // namespace
}  // namespace nodenet
