#include "../kernel/netns.h"

#include <errno.h>
#include <gtest/gtest.h>

#include "../kernel/error.h"
#include "test_netns.h"

namespace nodenet {
namespace {

TEST(NetnsGuard, EntersAndRestores) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok()) << "unshare(CLONE_NEWNET) needs root";
  ino_t home = CurrentThreadNetnsInode();
  {
    NetnsGuard guard(scratch.path());
    EXPECT_NE(CurrentThreadNetnsInode(), home);
  }
  EXPECT_EQ(CurrentThreadNetnsInode(), home);
}

TEST(NetnsGuard, RestoresWhenTheWorkThrows) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  ino_t home = CurrentThreadNetnsInode();
  try {
    NetnsGuard guard(scratch.path());
    throw KernelError(EIO, "x");
  } catch (const KernelError&) {
  }
  EXPECT_EQ(CurrentThreadNetnsInode(), home);
}

TEST(NetnsGuard, MissingPathIsENOENT) {
  ino_t home = CurrentThreadNetnsInode();
  try {
    NetnsGuard guard("/nonexistent/netns");
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(e.object(), "netns /nonexistent/netns");
  }
  EXPECT_EQ(CurrentThreadNetnsInode(), home);
}

TEST(NetnsGuard, OtherNamespaceKindIsEINVAL) {
  try {
    NetnsGuard guard("/proc/self/ns/uts");
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), EINVAL);
    EXPECT_NE(e.detail().find("not a network namespace"), std::string::npos);
  }
}

}  // namespace
}  // namespace nodenet
