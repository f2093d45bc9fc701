#include "../kernel/netlink.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <netlink/errno.h>
#include <netlink/route/link.h>

#include <memory>

#include "../kernel/error.h"
#include "../kernel/links.h"
#include "../kernel/netns.h"
#include "test_netns.h"

namespace nodenet {
namespace {

TEST(NlErrorToErrno, MapsLibnlCodes) {
  EXPECT_EQ(NlErrorToErrno(-NLE_OBJ_NOTFOUND), ENOENT);
  EXPECT_EQ(NlErrorToErrno(NLE_EXIST), EEXIST);
  EXPECT_EQ(NlErrorToErrno(-NLE_PERM), EPERM);
  EXPECT_EQ(NlErrorToErrno(-NLE_FAILURE), EIO);
}

// The kernel rejects an unknown link kind with EOPNOTSUPP and the extended ack "Unknown device
// type"; libnl alone would report only its own NLE_OPNOTSUPP text.
TEST(NlRouteSocket, KeepsTheKernelErrnoAndExtack) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  NlRouteSocket sock("link bogus0");
  std::unique_ptr<rtnl_link, void (*)(rtnl_link*)> link(rtnl_link_alloc(), rtnl_link_put);
  rtnl_link_set_name(link.get(), "bogus0");
  rtnl_link_set_type(link.get(), "nodenet-no-such-kind");
  int rc = rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL);
  ASSERT_LT(rc, 0);
  try {
    sock.Fail(rc);
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), EOPNOTSUPP);
    EXPECT_EQ(e.extack(), "Unknown device type");
    EXPECT_EQ(e.object(), "link bogus0");
  }
}

TEST(ListLinks, FreshNamespaceHasOnlyLoopback) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  std::vector<LinkInfo> links = ListLinks();
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].name, "lo");
  EXPECT_EQ(links[0].index, 1);
  EXPECT_EQ(links[0].kind, "");
  EXPECT_EQ(links[0].link_netnsid, -1);
}

}  // namespace
}  // namespace nodenet
