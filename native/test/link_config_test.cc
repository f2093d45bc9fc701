#include "../kernel/link_config.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <linux/neighbour.h>

#include "../kernel/error.h"
#include "../kernel/fdb.h"
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

const LinkDetails* Find(const std::vector<LinkDetails>& all, const std::string& name) {
  for (const LinkDetails& d : all) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

TEST(LinkConfig, BridgeAndVxlanWrittenAndReadBack) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());

  LinkRequest bridge;
  bridge.name = "br0";
  bridge.kind = "bridge";
  bridge.bridge = BridgeConfig{true, std::nullopt, std::nullopt};
  bridge.alias = "nodenet:test";
  bridge.up = true;
  CreateLink(bridge);
  LinkRequest underlay;
  underlay.name = "ul0";
  underlay.kind = "bridge";
  CreateLink(underlay);

  LinkRequest vxlan;
  vxlan.name = "vx0";
  vxlan.kind = "vxlan";
  VxlanConfig c;
  c.vni = 42;
  c.port = 4789;
  c.port_min = 1000;
  c.port_max = 2000;
  c.local = "fd00::1";
  c.group = "fd00::2";
  c.underlay = "ul0";
  c.learning = false;
  c.ttl = 7;
  c.tos = 1;
  vxlan.vxlan = c;
  vxlan.master = "br0";
  CreateLink(vxlan);

  std::vector<LinkDetails> all = ListLinkDetails();
  const LinkDetails* br = Find(all, "br0");
  const LinkDetails* vx = Find(all, "vx0");
  ASSERT_NE(br, nullptr);
  ASSERT_NE(vx, nullptr);
  ASSERT_TRUE(br->bridge.has_value());
  EXPECT_TRUE(br->bridge->stp);
  ASSERT_TRUE(vx->vxlan.has_value());
  EXPECT_EQ(vx->vxlan->vni, 42u);
  EXPECT_EQ(vx->vxlan->port, 4789);
  EXPECT_EQ(vx->vxlan->port_min, 1000);
  EXPECT_EQ(vx->vxlan->port_max, 2000);
  EXPECT_EQ(vx->vxlan->local, "fd00::1");
  EXPECT_EQ(vx->vxlan->group, "fd00::2");
  EXPECT_EQ(vx->vxlan->underlay_index, Find(all, "ul0")->index);
  EXPECT_FALSE(vx->vxlan->learning);
  EXPECT_EQ(vx->vxlan->ttl, 7);
  EXPECT_EQ(vx->vxlan->tos, 1);

  LinkRequest change;
  change.name = "br0";
  change.kind = "bridge";
  change.bridge = BridgeConfig{false, std::nullopt, std::nullopt};
  UpdateLink(change);
  EXPECT_FALSE(Find(ListLinkDetails(), "br0")->bridge->stp);

  EXPECT_EQ(ErrnoOf([] {
              LinkRequest again;
              again.name = "br0";
              again.kind = "bridge";
              CreateLink(again);
            }),
            EEXIST);
  RemoveLink("vx0");
  RemoveLink("br0");
  RemoveLink("ul0");
  EXPECT_EQ(ErrnoOf([] { RemoveLink("br0"); }), ENODEV);
  EXPECT_TRUE(ListLinkDetails().empty());
}

TEST(Fdb, AppendListRemove) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  LinkRequest vxlan;
  vxlan.name = "vx0";
  vxlan.kind = "vxlan";
  vxlan.vxlan = VxlanConfig{};
  vxlan.vxlan->vni = 42;
  vxlan.vxlan->local = "192.168.77.1";
  CreateLink(vxlan);

  FdbRequest add;
  add.device = "vx0";
  add.append = true;
  for (const char* dst : {"192.168.77.2", "192.168.77.3"}) {
    add.dst = dst;
    AddFdb(add);
  }
  std::vector<FdbEntry> entries = ListFdb("vx0");
  ASSERT_EQ(entries.size(), 2u);
  for (const FdbEntry& e : entries) {
    EXPECT_EQ(e.mac, "00:00:00:00:00:00");
    EXPECT_EQ(e.device, "vx0");
    EXPECT_TRUE(e.state & NUD_PERMANENT);
    EXPECT_TRUE(e.flags & NTF_SELF);
  }
  RemoveFdb(add);
  ASSERT_EQ(ListFdb("vx0").size(), 1u);
  EXPECT_EQ(ListFdb("vx0")[0].dst, "192.168.77.2");

  EXPECT_EQ(ErrnoOf([] {
              FdbRequest missing;
              missing.device = "vx0";
              missing.mac[0] = 2;
              RemoveFdb(missing);
            }),
            ENOENT);
  EXPECT_EQ(ErrnoOf([] { ListFdb("nope0"); }), ENODEV);
}

}  // namespace
}  // namespace nodenet
