#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "../kernel/error.h"
#include "../kernel/fd.h"
#include "../kernel/netns.h"
#include "../kernel/xtables.h"
#include "../kernel/xtables_lock.h"
#include "test_netns.h"

namespace nodenet {
namespace {

// A lock file of the test's own, never the machine's /run/xtables.lock.
class ScratchLockFile {
 public:
  ScratchLockFile() {
    char path[] = "/tmp/nodenet-xtlock-XXXXXX";
    UniqueFd fd(mkstemp(path));
    path_ = path;
    setenv("XTABLES_LOCKFILE", path_.c_str(), 1);
  }
  ~ScratchLockFile() {
    unsetenv("XTABLES_LOCKFILE");
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

XtRuleSpec AcceptAll() {
  XtRuleSpec r;
  r.ip.assign(84, 0);  // struct ipt_ip: any address, interface and protocol
  r.target = "ACCEPT";
  return r;
}

TEST(XtablesApply, CreatesKeepsAndRemovesOwnedChains) {
  ScratchLockFile lock;
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());

  XtApplySpec spec;
  spec.table = "filter";
  spec.owned_prefix = "NODENET-";
  spec.chains.push_back({"NODENET-T", {AcceptAll()}});
  XtRuleSpec jump;
  jump.ip.assign(84, 0);
  jump.target = "NODENET-T";
  spec.jumps.push_back({"INPUT", jump});

  XtApplyResult first = ApplyXtTable(spec);
  EXPECT_TRUE(first.committed);
  EXPECT_EQ(first.changes.size(), 3u);
  XtTable t = ReadXtTable(IpFamily::kIPv4, "filter");
  ASSERT_EQ(t.chains.size(), 4u);
  EXPECT_EQ(t.chains[0].rules.size(), 1u);
  EXPECT_EQ(t.chains[0].rules[0].verdict, "NODENET-T");
  EXPECT_EQ(t.chains[3].name, "NODENET-T");

  XtApplyResult again = ApplyXtTable(spec);
  EXPECT_FALSE(again.committed);
  EXPECT_TRUE(again.changes.empty());

  XtApplySpec empty;
  empty.table = "filter";
  empty.owned_prefix = "NODENET-";
  XtApplyResult removed = ApplyXtTable(empty);
  EXPECT_TRUE(removed.committed);
  t = ReadXtTable(IpFamily::kIPv4, "filter");
  EXPECT_EQ(t.chains.size(), 3u);
  EXPECT_TRUE(t.chains[0].rules.empty());
}

TEST(XtablesApply, RejectsAMalformedHeader) {
  ScratchLockFile lock;
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  XtApplySpec spec;
  spec.table = "filter";
  spec.owned_prefix = "NODENET-";
  XtRuleSpec bad = AcceptAll();
  bad.ip.resize(10);
  spec.chains.push_back({"NODENET-T", {bad}});
  try {
    ApplyXtTable(spec);
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), EINVAL);
  }
}

TEST(XtablesLock, TimesOutWhileAnotherHolderHasIt) {
  ScratchLockFile lock;
  UniqueFd holder(open(lock.path().c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(holder.valid());
  ASSERT_EQ(flock(holder.get(), LOCK_EX), 0);
  try {
    XtablesLock waiting(50);
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ETIMEDOUT);
    EXPECT_EQ(e.object(), "xtables lock " + lock.path());
  }
  holder.Reset();
  XtablesLock free_now(50);
  EXPECT_LT(free_now.waited_ms(), 50);
}

}  // namespace
}  // namespace nodenet
