#include "../kernel/qdiscs.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <linux/pkt_sched.h>

#include <cstring>

#include "../kernel/error.h"
#include "../kernel/netns.h"
#include "test_netns.h"

namespace nodenet {
namespace {

TEST(Qdiscs, AddListDeleteInAScratchNamespace) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());

  tc_fifo_qopt fifo{};
  fifo.limit = 42;
  QdiscRequest add;
  add.op = QdiscOp::kAdd;
  add.device = "lo";
  add.parent = TC_H_ROOT;
  add.handle = 0x50000;
  add.kind = "pfifo";
  add.options.resize(sizeof fifo);
  std::memcpy(add.options.data(), &fifo, sizeof fifo);
  ChangeQdisc(add);

  std::vector<QdiscInfo> listed = ListQdiscs("lo");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].device, "lo");
  EXPECT_EQ(listed[0].kind, "pfifo");
  EXPECT_EQ(listed[0].handle, 0x50000u);
  EXPECT_EQ(listed[0].parent, TC_H_ROOT);
  ASSERT_EQ(listed[0].options.size(), sizeof fifo);
  tc_fifo_qopt back{};
  std::memcpy(&back, listed[0].options.data(), sizeof back);
  EXPECT_EQ(back.limit, 42u);
  EXPECT_TRUE(listed[0].has_stats);

  QdiscRequest del;
  del.op = QdiscOp::kDelete;
  del.device = "lo";
  del.parent = TC_H_ROOT;
  ChangeQdisc(del);
  for (const QdiscInfo& q : ListQdiscs("lo")) EXPECT_NE(q.kind, "pfifo");
}

TEST(Qdiscs, UnknownKindCarriesTheKernelsExtack) {
  testing::ScratchNetns scratch;
  ASSERT_TRUE(scratch.ok());
  NetnsGuard guard(scratch.path());
  QdiscRequest add;
  add.op = QdiscOp::kReplace;
  add.device = "lo";
  add.parent = TC_H_ROOT;
  add.kind = "nodenet-no-such-qdisc";
  try {
    ChangeQdisc(add);
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(e.extack(), "Specified qdisc kind is unknown");
    EXPECT_EQ(e.object(), "qdisc nodenet-no-such-qdisc parent root on dev lo");
  }
}

TEST(Qdiscs, MissingDeviceIsENODEV) {
  try {
    DeviceIndex("nodenet-none0");
    FAIL() << "expected KernelError";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ENODEV);
    EXPECT_EQ(e.object(), "dev nodenet-none0");
  }
}

}  // namespace
}  // namespace nodenet
