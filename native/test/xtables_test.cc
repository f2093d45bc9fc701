#include "../kernel/xtables.h"

#include <errno.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "../kernel/error.h"
#include "../kernel/netns.h"
#include "test_netns.h"

namespace nodenet {
namespace {

TEST(Xtables, FreshNamespaceHasNoTablesAndReadingCreatesNone) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  EXPECT_TRUE(ListXtTables(IpFamily::kIPv4).empty());
  EXPECT_TRUE(ListXtTables(IpFamily::kIPv6).empty());
  for (auto family : {IpFamily::kIPv4, IpFamily::kIPv6}) {
    try {
      ReadXtTable(family, "filter");
      FAIL() << "expected KernelError";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.err(), ENOENT);
      EXPECT_EQ(e.object(), std::string("table filter (") + FamilyName(family) + ")");
    }
  }
  EXPECT_TRUE(ListXtTables(IpFamily::kIPv4).empty());
  EXPECT_TRUE(ListXtTables(IpFamily::kIPv6).empty());
}

}  // namespace
}  // namespace nodenet

namespace nodenet {
namespace {

// Reads a populated table through libiptc, so LeakSanitizer sees the handle's whole life.
TEST(Xtables, ReadsRulesWrittenByIptables) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  std::string enter = "nsenter --net=" + scratch.path() + " iptables-legacy -t nat ";
  ASSERT_EQ(std::system((enter + "-N NODENET-X").c_str()), 0);
  ASSERT_EQ(std::system((enter + "-A PREROUTING -p tcp -m comment --comment hi -j NODENET-X").c_str()), 0);
  ASSERT_EQ(std::system((enter + "-A NODENET-X -p tcp -j DNAT --to-destination 10.0.0.1:80").c_str()), 0);
  NetnsGuard guard(scratch.path());
  XtTable nat = ReadXtTable(IpFamily::kIPv4, "nat");
  ASSERT_EQ(nat.chains.size(), 5u);
  EXPECT_EQ(nat.chains[0].name, "PREROUTING");
  EXPECT_TRUE(nat.chains[0].builtin);
  EXPECT_EQ(nat.chains[0].policy, "ACCEPT");
  ASSERT_EQ(nat.chains[0].rules.size(), 1u);
  const XtRule& jump = nat.chains[0].rules[0];
  EXPECT_EQ(jump.verdict, "NODENET-X");
  EXPECT_EQ(jump.target.name, "");
  ASSERT_EQ(jump.matches.size(), 1u);
  EXPECT_EQ(jump.matches[0].name, "comment");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(jump.matches[0].data.data())), "hi");
  EXPECT_EQ(jump.ip.size(), 84u);
  const XtChain& user = nat.chains[4];
  EXPECT_EQ(user.name, "NODENET-X");
  EXPECT_FALSE(user.builtin);
  EXPECT_EQ(user.references, 1u);
  ASSERT_EQ(user.rules.size(), 1u);
  EXPECT_EQ(user.rules[0].target.name, "DNAT");
  EXPECT_EQ(user.rules[0].target.revision, 2);
  EXPECT_EQ(user.rules[0].target.data.size(), 48u);
}

}  // namespace
}  // namespace nodenet
