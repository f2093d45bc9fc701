#include "../kernel/error.h"

#include <errno.h>
#include <gtest/gtest.h>

namespace nodenet {
namespace {

TEST(KernelError, MessageNamesOpObjectNetnsAndCode) {
  KernelError e(ENOENT, "table nat (ipv4)", "table does not exist in this network namespace");
  e.set_op("netfilter.read");
  e.set_netns("/var/run/netns/x");
  EXPECT_EQ(e.Message(), "netfilter.read table nat (ipv4) in netns /var/run/netns/x: table does not exist in this network namespace (ENOENT)");
}

TEST(KernelError, FallsBackToStrerrorAndAppendsExtack) {
  KernelError e(EOPNOTSUPP, "link x", "", "Unknown device type");
  e.set_op("links.create");
  EXPECT_EQ(e.Message(), "links.create link x: Operation not supported (EOPNOTSUPP): Unknown device type");
}

TEST(KernelError, DoesNotRepeatTheNamespace) {
  KernelError e(ENOENT, "netns /a", "cannot open network namespace: No such file or directory");
  e.set_op("links.list");
  e.set_netns("/a");
  EXPECT_EQ(e.Message(), "links.list netns /a: cannot open network namespace: No such file or directory (ENOENT)");
}

TEST(ErrnoName, KnownAndUnknown) {
  EXPECT_EQ(ErrnoName(EPERM), "EPERM");
  EXPECT_EQ(ErrnoName(EAGAIN), "EAGAIN");
  EXPECT_EQ(ErrnoName(9999), "E9999");
}

}  // namespace
}  // namespace nodenet
