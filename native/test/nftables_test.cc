#include "../kernel/nftables.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include "../kernel/error.h"
#include "../kernel/netns.h"
#include "test_netns.h"

namespace nodenet {
namespace {

// Builds an expression through the same attribute table the addon uses.
class Expr {
 public:
  explicit Expr(std::string name) { expr_.name = std::move(name); }
  Expr& Num(const char* key, int64_t v) {
    Add(key).number = v;
    return *this;
  }
  Expr& Big(const char* key, uint64_t v) {
    Add(key).u64 = v;
    return *this;
  }
  Expr& Str(const char* key, std::string v) {
    Add(key).text = std::move(v);
    return *this;
  }
  Expr& Data(const char* key, NftBytes v) {
    Add(key).bytes = std::move(v);
    return *this;
  }
  operator NftExpr() const { return expr_; }

 private:
  NftAttr& Add(const char* key) {
    const NftExprAttr* spec = FindNftExprAttr(expr_.name, key);
    if (spec == nullptr) throw std::logic_error(expr_.name + " has no attribute " + key);
    NftAttr a;
    a.spec = spec;
    expr_.attrs.push_back(a);
    return expr_.attrs.back();
  }
  NftExpr expr_;
};

const NftAttr* AttrOf(const NftExpr& e, const std::string& key) {
  for (const NftAttr& a : e.attrs) {
    if (a.spec->key == key) return &a;
  }
  return nullptr;
}

// Every attribute of `want` is in `have` with the same value (the kernel may add more: nat echoes
// reg_addr_max and its flags).
void ExpectExprContains(const NftExpr& have, const NftExpr& want) {
  ASSERT_EQ(have.name, want.name);
  for (const NftAttr& w : want.attrs) {
    const NftAttr* h = AttrOf(have, w.spec->key);
    ASSERT_NE(h, nullptr) << want.name << " lost " << w.spec->key;
    EXPECT_FALSE(h->raw) << want.name << " " << w.spec->key;
    EXPECT_EQ(h->number, w.number) << want.name << " " << w.spec->key;
    EXPECT_EQ(h->u64, w.u64) << want.name << " " << w.spec->key;
    EXPECT_EQ(h->text, w.text) << want.name << " " << w.spec->key;
    EXPECT_EQ(h->bytes, w.bytes) << want.name << " " << w.spec->key;
  }
}

NftOp AddTable(uint32_t family, const std::string& table) {
  NftOp op;
  op.kind = NftOpKind::kAddTable;
  op.family = family;
  op.table = table;
  return op;
}

NftOp TableOp(NftOpKind kind, uint32_t family, const std::string& table, const std::string& chain = {}) {
  NftOp op = AddTable(family, table);
  op.kind = kind;
  op.chain = chain;
  return op;
}

NftOp AddRule(uint32_t family, const std::string& table, const std::string& chain, std::vector<NftExpr> exprs) {
  NftOp op = TableOp(NftOpKind::kAddRule, family, table, chain);
  op.exprs = std::move(exprs);
  return op;
}

NftExpr Jump(const std::string& chain) { return Expr("immediate").Num("dreg", NFT_REG_VERDICT).Num("verdict", NFT_JUMP).Str("chain", chain); }

NftExpr Accept() { return Expr("immediate").Num("dreg", NFT_REG_VERDICT).Num("verdict", NF_ACCEPT); }

// The dump with its handles and generation, as text, to compare whole rulesets.
std::string Describe(const NftDump& d) {
  std::string s;
  for (const auto& t : d.tables) s += "table " + NftFamilyName(t.family) + " " + t.name + "\n";
  for (const auto& c : d.chains) {
    s += "chain " + c.table + " " + c.name + (c.hook ? " hook " + std::to_string(*c.hook) : "") + "\n";
  }
  for (const auto& r : d.rules) {
    s += "rule " + r.table + " " + r.chain + " " + std::to_string(r.handle) + ":";
    for (const auto& e : r.exprs) s += " " + e.name + "/" + std::to_string(e.attrs.size());
    s += "\n";
  }
  return s;
}

class Nftables : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(scratch_.ok());
    guard_ = std::make_unique<NetnsGuard>(scratch_.path());
  }
  void TearDown() override { guard_.reset(); }
  std::string netns() const { return scratch_.path(); }

 private:
  testing::ScratchNetns scratch_;
  std::unique_ptr<NetnsGuard> guard_;
};

// The table's types must be the ones libnftnl stores: a wrong size would be misread on the way
// out and overread on the way in. Every row is set and read back through the library.
TEST(NftExprAttrs, AgreeWithLibnftnl) {
  std::set<std::pair<std::string, std::string>> seen;
  for (const NftExprAttr& a : NftExprAttrs()) {
    SCOPED_TRACE(std::string(a.expr) + "." + a.key);
    EXPECT_NE(std::string(a.key), "name");
    EXPECT_TRUE(seen.insert({a.expr, a.key}).second) << "duplicate";
    std::unique_ptr<nftnl_expr, void (*)(const nftnl_expr*)> e(nftnl_expr_alloc(a.expr), nftnl_expr_free);
    ASSERT_NE(e, nullptr) << "libnftnl does not know the expression";
    size_t want_len = 0;
    switch (a.type) {
      case NftAttrType::kU8: nftnl_expr_set_u8(e.get(), a.id, 0x5a); want_len = 1; break;
      case NftAttrType::kU16: nftnl_expr_set_u16(e.get(), a.id, 0x5a5b); want_len = 2; break;
      case NftAttrType::kU32:
      case NftAttrType::kS32: nftnl_expr_set_u32(e.get(), a.id, 0x5a5b5c5d); want_len = 4; break;
      case NftAttrType::kU64: nftnl_expr_set_u64(e.get(), a.id, 0x5a5b5c5d5e5f6061ull); want_len = 8; break;
      case NftAttrType::kString:
        // libnftnl frees an immediate's chain only along with its verdict.
        if (std::string(a.expr) == "immediate") nftnl_expr_set_u32(e.get(), NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(NFT_JUMP));
        ASSERT_EQ(nftnl_expr_set_str(e.get(), a.id, "abc"), 0);
        break;
      case NftAttrType::kData: {
        const uint8_t bytes[3] = {1, 2, 3};
        ASSERT_EQ(nftnl_expr_set(e.get(), a.id, bytes, sizeof bytes), 0);
        want_len = 3;
        break;
      }
      case NftAttrType::kXtInfo: {
        void* owned = std::calloc(1, 8);
        ASSERT_EQ(nftnl_expr_set(e.get(), a.id, owned, 8), 0);
        want_len = 8;
        break;
      }
    }
    ASSERT_TRUE(nftnl_expr_is_set(e.get(), a.id));
    uint32_t len = 0;
    const void* p = nftnl_expr_get(e.get(), a.id, &len);
    ASSERT_NE(p, nullptr);
    if (a.type == NftAttrType::kString) {
      EXPECT_STREQ(static_cast<const char*>(p), "abc");
    } else {
      EXPECT_EQ(len, want_len);
    }
  }
  EXPECT_TRUE(IsKnownNftExpr("notrack"));
  EXPECT_FALSE(IsKnownNftExpr("no-such-expression"));
  EXPECT_EQ(NftExprAttrKeys("cmp"), "sreg, op, data");
}

// A NEWRULE message as the kernel would send it, with an expression libnftnl may not know.
class RuleMessage {
 public:
  explicit RuleMessage(bool with_future_expr) : buf_(4096) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE;
    static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(nfgenmsg)))->nfgen_family = NFPROTO_IPV4;
    mnl_attr_put_strz(nlh_, NFTA_RULE_TABLE, "t");
    mnl_attr_put_strz(nlh_, NFTA_RULE_CHAIN, "c");
    mnl_attr_put_u64(nlh_, NFTA_RULE_HANDLE, htobe64(7));
    mnl_attr_put(nlh_, NFTA_RULE_USERDATA, 3, "abc");
    nlattr* list = mnl_attr_nest_start(nlh_, NFTA_RULE_EXPRESSIONS);
    Add("counter", [this] {
      mnl_attr_put_u64(nlh_, NFTA_COUNTER_BYTES, htobe64(5));
      mnl_attr_put_u64(nlh_, NFTA_COUNTER_PACKETS, htobe64(1));
    });
    if (with_future_expr) Add("nodenet-future", [this] { mnl_attr_put_u32(nlh_, 1, htonl(9)); });
    Add("meta", [this] {
      mnl_attr_put_u32(nlh_, NFTA_META_KEY, htonl(NFT_META_MARK));
      mnl_attr_put_u32(nlh_, NFTA_META_DREG, htonl(NFT_REG_1));
    });
    mnl_attr_nest_end(nlh_, list);
  }
  const nlmsghdr* get() const { return nlh_; }

 private:
  template <class Fill>
  void Add(const char* name, Fill fill) {
    nlattr* elem = mnl_attr_nest_start(nlh_, NFTA_LIST_ELEM);
    mnl_attr_put_strz(nlh_, NFTA_EXPR_NAME, name);
    nlattr* data = mnl_attr_nest_start(nlh_, NFTA_EXPR_DATA);
    fill();
    mnl_attr_nest_end(nlh_, data);
    mnl_attr_nest_end(nlh_, elem);
  }
  std::vector<char> buf_;
  nlmsghdr* nlh_;
};

TEST(ParseNftRule, AnExpressionLibnftnlDoesNotKnowComesBackWithJustItsName) {
  for (bool future : {false, true}) {
    SCOPED_TRACE(future ? "with an unknown expression" : "all known");
    RuleMessage msg(future);
    NftRule rule = ParseNftRule(msg.get());
    EXPECT_EQ(rule.family, static_cast<uint32_t>(NFPROTO_IPV4));
    EXPECT_EQ(rule.table, "t");
    EXPECT_EQ(rule.chain, "c");
    EXPECT_EQ(rule.handle, 7u);
    EXPECT_EQ(rule.userdata, (NftBytes{'a', 'b', 'c'}));
    ASSERT_EQ(rule.exprs.size(), future ? 3u : 2u);
    ExpectExprContains(rule.exprs.front(), Expr("counter").Big("bytes", 5).Big("packets", 1));
    ExpectExprContains(rule.exprs.back(), Expr("meta").Num("key", NFT_META_MARK).Num("dreg", NFT_REG_1));
    if (future) {
      EXPECT_EQ(rule.exprs[1].name, "nodenet-future");
      EXPECT_TRUE(rule.exprs[1].attrs.empty());
    }
  }
}

TEST_F(Nftables, OneBatchBuildsTablesChainsAndRulesThatDumpBack) {
  NftDump before = DumpNftables({});
  EXPECT_TRUE(before.tables.empty());

  NftCommitRequest req;
  req.generation = before.generation;
  NftOp table = AddTable(NFPROTO_IPV4, "nodenet");
  table.userdata = NftBytes{'t', 'u'};
  req.ops.push_back(table);
  NftOp base = TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "nodenet", "nat-prerouting");
  base.hook = NF_INET_PRE_ROUTING;
  base.priority = -100;
  base.type = "nat";
  base.policy = NF_ACCEPT;
  req.ops.push_back(base);
  req.ops.push_back(TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "nodenet", "services"));

  // ip daddr 10.96.0.10 counter jump services comment "web"
  const std::vector<NftExpr> rule1 = {
      Expr("payload").Num("dreg", NFT_REG_1).Num("base", NFT_PAYLOAD_NETWORK_HEADER).Num("offset", 16).Num("len", 4),
      Expr("cmp").Num("sreg", NFT_REG_1).Num("op", NFT_CMP_EQ).Data("data", {10, 96, 0, 10}),
      Expr("counter").Big("bytes", 0).Big("packets", 0),
      Jump("services"),
  };
  NftOp add1 = AddRule(NFPROTO_IPV4, "nodenet", "nat-prerouting", rule1);
  add1.userdata = NftBytes{0, 4, 'w', 'e', 'b', 0};
  req.ops.push_back(add1);
  // ct state new dnat to 10.0.0.1
  const std::vector<NftExpr> rule2 = {
      Expr("ct").Num("key", NFT_CT_STATE).Num("dreg", NFT_REG_1),
      Expr("bitwise").Num("sreg", NFT_REG_1).Num("dreg", NFT_REG_1).Num("len", 4).Data("mask", {8, 0, 0, 0}).Data("xor", {0, 0, 0, 0}),
      Expr("cmp").Num("sreg", NFT_REG_1).Num("op", NFT_CMP_NEQ).Data("data", {0, 0, 0, 0}),
      Expr("immediate").Num("dreg", NFT_REG_1).Data("data", {10, 0, 0, 1}),
      Expr("nat").Num("type", NFT_NAT_DNAT).Num("family", NFPROTO_IPV4).Num("reg_addr_min", NFT_REG_1),
  };
  req.ops.push_back(AddRule(NFPROTO_IPV4, "nodenet", "services", rule2));
  req.ops.push_back(AddRule(NFPROTO_IPV4, "nodenet", "services", {Expr("notrack"), Accept()}));
  CommitNftables(req);

  NftDump after = DumpNftables({});
  EXPECT_NE(after.generation, before.generation);
  ASSERT_EQ(after.tables.size(), 1u);
  EXPECT_EQ(after.tables[0].family, static_cast<uint32_t>(NFPROTO_IPV4));
  EXPECT_EQ(after.tables[0].name, "nodenet");
  EXPECT_EQ(after.tables[0].userdata, (NftBytes{'t', 'u'}));
  ASSERT_EQ(after.chains.size(), 2u);
  const NftChain& pre = after.chains[0].name == "nat-prerouting" ? after.chains[0] : after.chains[1];
  const NftChain& svc = after.chains[0].name == "nat-prerouting" ? after.chains[1] : after.chains[0];
  EXPECT_EQ(pre.name, "nat-prerouting");
  EXPECT_EQ(pre.hook, std::optional<uint32_t>(NF_INET_PRE_ROUTING));
  EXPECT_EQ(pre.priority, std::optional<int32_t>(-100));
  EXPECT_EQ(pre.type, std::optional<std::string>("nat"));
  EXPECT_EQ(pre.policy, std::optional<uint32_t>(NF_ACCEPT));
  EXPECT_EQ(svc.name, "services");
  EXPECT_FALSE(svc.hook || svc.priority || svc.type || svc.policy);

  ASSERT_EQ(after.rules.size(), 3u);
  const NftRule& r1 = after.rules[0].chain == "nat-prerouting" ? after.rules[0] : after.rules[1];
  EXPECT_EQ(r1.chain, "nat-prerouting");
  EXPECT_EQ(r1.userdata, add1.userdata);
  EXPECT_NE(r1.handle, 0u);
  ASSERT_EQ(r1.exprs.size(), rule1.size());
  for (size_t i = 0; i < rule1.size(); ++i) ExpectExprContains(r1.exprs[i], rule1[i]);
  // The verdict is signed on the way back too.
  EXPECT_EQ(AttrOf(r1.exprs[3], "verdict")->number, NFT_JUMP);

  std::vector<const NftRule*> in_services;
  for (const auto& r : after.rules) {
    if (r.chain == "services") in_services.push_back(&r);
  }
  ASSERT_EQ(in_services.size(), 2u);
  EXPECT_FALSE(in_services[0]->userdata.has_value());
  ASSERT_EQ(in_services[0]->exprs.size(), rule2.size());
  for (size_t i = 0; i < rule2.size(); ++i) ExpectExprContains(in_services[0]->exprs[i], rule2[i]);
  ASSERT_EQ(in_services[1]->exprs.size(), 2u);
  EXPECT_EQ(in_services[1]->exprs[0].name, "notrack");
  EXPECT_TRUE(in_services[1]->exprs[0].attrs.empty());

  // deleteRule by handle, flushChain and position.
  NftCommitRequest edit;
  edit.generation = after.generation;
  NftOp del = TableOp(NftOpKind::kDeleteRule, NFPROTO_IPV4, "nodenet", "services");
  del.handle = in_services[1]->handle;
  edit.ops.push_back(del);
  NftOp after_first = AddRule(NFPROTO_IPV4, "nodenet", "nat-prerouting", {Accept()});
  after_first.position = r1.handle;
  edit.ops.push_back(after_first);
  CommitNftables(edit);
  NftDump edited = DumpNftables({});
  std::vector<std::string> chains_of_rules;
  for (const auto& r : edited.rules) chains_of_rules.push_back(r.chain + "/" + std::to_string(r.exprs.size()));
  EXPECT_EQ(chains_of_rules, (std::vector<std::string>{"nat-prerouting/4", "nat-prerouting/1", "services/5"}));

  CommitNftables({std::nullopt, {TableOp(NftOpKind::kFlushChain, NFPROTO_IPV4, "nodenet", "nat-prerouting")}});
  NftDump flushed = DumpNftables({});
  ASSERT_EQ(flushed.rules.size(), 1u);
  EXPECT_EQ(flushed.rules[0].chain, "services");
}

TEST_F(Nftables, StaleGenerationIsRefusedWithErestartAndChangesNothing) {
  CommitNftables({std::nullopt, {AddTable(NFPROTO_IPV4, "a")}});
  NftDump read = DumpNftables({});
  // Someone else commits in between.
  CommitNftables({std::nullopt, {AddTable(NFPROTO_IPV4, "b")}});
  NftDump between = DumpNftables({});
  ASSERT_NE(between.generation, read.generation);

  try {
    CommitNftables({read.generation, {TableOp(NftOpKind::kDeleteTable, NFPROTO_IPV4, "a"), AddTable(NFPROTO_IPV4, "c")}});
    FAIL() << "expected ERESTART";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ERESTART);
    EXPECT_EQ(ErrnoName(e.err()), "ERESTART");
    EXPECT_NE(e.detail().find("generation " + std::to_string(read.generation)), std::string::npos) << e.detail();
  }
  NftDump after = DumpNftables({});
  EXPECT_EQ(after.generation, between.generation);
  EXPECT_EQ(Describe(after), Describe(between));

  // The current generation goes through.
  CommitNftables({after.generation, {TableOp(NftOpKind::kDeleteTable, NFPROTO_IPV4, "a")}});
  EXPECT_EQ(DumpNftables({}).tables.size(), 1u);
}

TEST_F(Nftables, AFailingOpInTheMiddleLeavesTheRulesetUnchangedAndIsNamed) {
  CommitNftables({std::nullopt,
                  {AddTable(NFPROTO_IPV4, "nodenet"), TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "nodenet", "nat-prerouting"),
                   TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "nodenet", "target"),
                   AddRule(NFPROTO_IPV4, "nodenet", "nat-prerouting", {Jump("target")})}});
  NftDump before = DumpNftables({});

  NftCommitRequest req;
  req.generation = before.generation;
  req.ops.push_back(TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "nodenet", "other"));
  req.ops.push_back(AddRule(NFPROTO_IPV4, "nodenet", "nat-prerouting", {Accept()}));
  req.ops.push_back(AddRule(NFPROTO_IPV4, "nodenet", "nat-prerouting", {Accept()}));
  req.ops.push_back(AddRule(NFPROTO_IPV4, "nodenet", "nat-prerouting", {Jump("missing")}));
  req.ops.push_back(AddRule(NFPROTO_IPV4, "nodenet", "other", {Accept()}));
  try {
    CommitNftables(req);
    FAIL() << "expected ENOENT";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(e.object(), "table ip nodenet chain nat-prerouting rule 3");
    EXPECT_NE(e.detail().find("addRule (op 4 of 5)"), std::string::npos) << e.detail();
  }
  NftDump after = DumpNftables({});
  EXPECT_EQ(Describe(after), Describe(before));
  EXPECT_EQ(after.generation, before.generation) << "an aborted batch is no new generation";

  // The kernel's own refusals are named the same way: a chain a rule jumps to is busy.
  try {
    CommitNftables({std::nullopt, {TableOp(NftOpKind::kDeleteChain, NFPROTO_IPV4, "nodenet", "target")}});
    FAIL() << "expected EBUSY";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), EBUSY);
    EXPECT_EQ(e.object(), "table ip nodenet chain target");
    EXPECT_NE(e.detail().find("deleteChain (op 1 of 1)"), std::string::npos) << e.detail();
  }
  // Deleting a chain takes its rules along.
  CommitNftables({std::nullopt, {TableOp(NftOpKind::kDeleteChain, NFPROTO_IPV4, "nodenet", "nat-prerouting")}});
  NftDump gone = DumpNftables({});
  EXPECT_EQ(gone.chains.size(), 1u);
  EXPECT_TRUE(gone.rules.empty());
}

TEST_F(Nftables, ImmediateDataAndVerdictAreExclusive) {
  CommitNftables({std::nullopt, {AddTable(NFPROTO_IPV4, "t"), TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "t", "c")}});
  NftExpr both = Expr("immediate").Num("dreg", NFT_REG_VERDICT).Num("verdict", NFT_JUMP).Str("chain", "c").Data("data", {1, 2, 3, 4});
  NftExpr chain_only = Expr("immediate").Num("dreg", NFT_REG_VERDICT).Str("chain", "c");
  for (const NftExpr& bad : {both, chain_only}) {
    try {
      CommitNftables({std::nullopt, {AddRule(NFPROTO_IPV4, "t", "c", {bad})}});
      FAIL() << "expected EINVAL";
    } catch (const KernelError& e) {
      EXPECT_EQ(e.err(), EINVAL);
      EXPECT_EQ(e.object(), "table ip t chain c rule 1");
    }
  }
}

TEST_F(Nftables, DeleteTableRemovesEverythingInIt) {
  CommitNftables({std::nullopt,
                  {AddTable(NFPROTO_INET, "gone"), TableOp(NftOpKind::kAddChain, NFPROTO_INET, "gone", "c"),
                   AddRule(NFPROTO_INET, "gone", "c", {Expr("counter"), Accept()}), AddTable(NFPROTO_INET, "kept")}});
  ASSERT_EQ(DumpNftables({}).rules.size(), 1u);
  CommitNftables({std::nullopt, {TableOp(NftOpKind::kDeleteTable, NFPROTO_INET, "gone")}});
  NftDump d = DumpNftables({});
  ASSERT_EQ(d.tables.size(), 1u);
  EXPECT_EQ(d.tables[0].name, "kept");
  EXPECT_TRUE(d.chains.empty());
  EXPECT_TRUE(d.rules.empty());

  try {
    CommitNftables({std::nullopt, {TableOp(NftOpKind::kDeleteTable, NFPROTO_INET, "gone")}});
    FAIL() << "expected ENOENT";
  } catch (const KernelError& e) {
    EXPECT_EQ(e.err(), ENOENT);
    EXPECT_EQ(e.object(), "table inet gone");
  }
}

TEST_F(Nftables, DumpsFilterByFamilyAndTableAndCreateNothing) {
  NftCommitRequest req;
  for (auto [family, table] : std::vector<std::pair<uint32_t, std::string>>{
           {NFPROTO_IPV4, "t1"}, {NFPROTO_IPV6, "t1"}, {NFPROTO_IPV4, "t2"}, {NFPROTO_INET, "t3"}}) {
    req.ops.push_back(AddTable(family, table));
    req.ops.push_back(TableOp(NftOpKind::kAddChain, family, table, "c"));
    req.ops.push_back(AddRule(family, table, "c", {Expr("counter")}));
  }
  CommitNftables(req);

  auto tables = [](const NftDump& d) {
    std::vector<std::string> out;
    for (const auto& t : d.tables) out.push_back(NftFamilyName(t.family) + " " + t.name);
    std::sort(out.begin(), out.end());
    return out;
  };
  auto consistent = [](const NftDump& d) {
    for (const auto& c : d.chains) {
      bool found = false;
      for (const auto& t : d.tables) found |= t.family == c.family && t.name == c.table;
      EXPECT_TRUE(found) << c.table;
    }
    for (const auto& r : d.rules) {
      bool found = false;
      for (const auto& t : d.tables) found |= t.family == r.family && t.name == r.table;
      EXPECT_TRUE(found) << r.table;
    }
  };

  NftDump all = DumpNftables({});
  EXPECT_EQ(tables(all), (std::vector<std::string>{"inet t3", "ip t1", "ip t2", "ip6 t1"}));
  EXPECT_EQ(all.chains.size(), 4u);
  EXPECT_EQ(all.rules.size(), 4u);

  NftDump ipv4 = DumpNftables({NFPROTO_IPV4, std::nullopt, true});
  EXPECT_EQ(tables(ipv4), (std::vector<std::string>{"ip t1", "ip t2"}));
  EXPECT_EQ(ipv4.chains.size(), 2u);
  EXPECT_EQ(ipv4.rules.size(), 2u);
  consistent(ipv4);

  NftDump t1 = DumpNftables({NFPROTO_UNSPEC, std::string("t1"), true});
  EXPECT_EQ(tables(t1), (std::vector<std::string>{"ip t1", "ip6 t1"}));
  EXPECT_EQ(t1.rules.size(), 2u);
  consistent(t1);

  NftDump ip6_t1 = DumpNftables({NFPROTO_IPV6, std::string("t1"), false});
  EXPECT_EQ(tables(ip6_t1), (std::vector<std::string>{"ip6 t1"}));
  EXPECT_EQ(ip6_t1.chains.size(), 1u);
  EXPECT_TRUE(ip6_t1.rules.empty()) << "rules: false";

  // A table that does not exist is an empty dump, and reading it creates nothing.
  NftDump missing = DumpNftables({NFPROTO_IPV4, std::string("missing"), true});
  EXPECT_TRUE(missing.tables.empty() && missing.chains.empty() && missing.rules.empty());
  NftDump again = DumpNftables({});
  EXPECT_EQ(again.generation, all.generation);
  EXPECT_EQ(Describe(again), Describe(all));
}

// Tables, chains and rules come from separate dumps: a commit between them must not show up as a
// table without its rules. Whatever a dump returns is one generation's ruleset.
TEST_F(Nftables, ADumpIsOneGenerationWhileAnotherWriterCommits) {
  constexpr int kRules = 20;
  NftCommitRequest add;
  add.ops.push_back(AddTable(NFPROTO_IPV4, "churn"));
  add.ops.push_back(TableOp(NftOpKind::kAddChain, NFPROTO_IPV4, "churn", "c"));
  for (int i = 0; i < kRules; ++i) add.ops.push_back(AddRule(NFPROTO_IPV4, "churn", "c", {Expr("counter"), Accept()}));
  const NftCommitRequest del{std::nullopt, {TableOp(NftOpKind::kDeleteTable, NFPROTO_IPV4, "churn")}};

  std::atomic<bool> stop{false};
  std::string writer_error;
  std::thread writer([&] {
    try {
      NetnsGuard guard(netns());
      for (bool present = false; !stop; present = !present) {
        CommitNftables(present ? del : add);
        std::this_thread::sleep_for(std::chrono::microseconds(500));
      }
    } catch (const KernelError& e) {
      writer_error = e.Message();
    }
  });
  int whole = 0, interrupted = 0;
  for (int i = 0; i < 200; ++i) {
    try {
      NftDump d = DumpNftables({});
      if (d.tables.empty()) {
        EXPECT_TRUE(d.chains.empty() && d.rules.empty()) << Describe(d);
      } else {
        EXPECT_EQ(d.chains.size(), 1u) << Describe(d);
        EXPECT_EQ(d.rules.size(), static_cast<size_t>(kRules)) << Describe(d);
      }
      ++whole;
    } catch (const KernelError& e) {
      // Ten changes in a row during one read: allowed, and said so.
      EXPECT_EQ(e.err(), EINTR) << e.Message();
      ++interrupted;
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(writer_error, "");
  EXPECT_GT(whole, 0) << interrupted << " reads interrupted";
}

TEST_F(Nftables, AnEmptyBatchChangesNothing) {
  NftDump before = DumpNftables({});
  CommitNftables({before.generation, {}});
  EXPECT_EQ(DumpNftables({}).generation, before.generation);
}

}  // namespace
}  // namespace nodenet
