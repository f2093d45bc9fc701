#include "../kernel/routes.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "../kernel/error.h"
#include "../kernel/fd.h"
#include "../kernel/netns.h"
#include "test_netns.h"

namespace nodenet {
namespace {

int ErrnoOf(void (*fn)()) {
  try {
    fn();
  } catch (const KernelError& e) {
    return e.err();
  }
  return 0;
}

TEST(RouteGet, NotAnAddressIsEINVAL) {
  try {
    RouteGet("10.0.0");
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), EINVAL);
    EXPECT_EQ(e.object(), "route to 10.0.0");
  }
}

TEST(RouteGet, AFreshNamespaceHasNoRoute) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok()) << "unshare(CLONE_NEWNET) needs root";
  NetnsGuard guard(scratch.path());
  // lo is down in a new namespace, so not even the local table has a usable route.
  EXPECT_EQ(ErrnoOf([] { RouteGet("10.1.2.3"); }), ENETUNREACH);
  EXPECT_EQ(ErrnoOf([] { RouteGet("2001:db8::1"); }), ENETUNREACH);
}

TEST(RouteGet, LoopbackOnceLoIsUp) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  // Bring the scratch namespace's lo up (a socket made now belongs to it), which gives it the
  // local 127.0.0.0/8 routes.
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ASSERT_EQ(::ioctl(s.get(), SIOCGIFFLAGS, &ifr), 0);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  ASSERT_EQ(::ioctl(s.get(), SIOCSIFFLAGS, &ifr), 0);

  RouteLookup r = RouteGet("127.0.0.1");
  EXPECT_EQ(r.family, AF_INET);
  EXPECT_EQ(r.destination, "127.0.0.1");
  EXPECT_EQ(r.type, RTN_LOCAL);
  EXPECT_EQ(r.oif_name, "lo");
  EXPECT_GT(r.oif, 0);
  EXPECT_EQ(r.gateway, "");
  EXPECT_EQ(r.prefsrc, "127.0.0.1");
  EXPECT_EQ(RouteGet("::1").type, RTN_LOCAL);
}

TEST(NetnsId, NoIdIsNotAssignedAndStaysSo) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  // A namespace just made has no id anywhere; asking twice shows the first ask assigned none.
  EXPECT_EQ(NetnsId(scratch.path()), kNetnsIdNotAssigned);
  EXPECT_EQ(NetnsId(scratch.path()), kNetnsIdNotAssigned);
}

TEST(NetnsId, MissingAndWrongFiles) {
  EXPECT_EQ(ErrnoOf([] { NetnsId("/nonexistent/netns"); }), ENOENT);
  EXPECT_EQ(ErrnoOf([] { NetnsId("/proc/self/ns/uts"); }), EINVAL);
}

}  // namespace
}  // namespace nodenet
