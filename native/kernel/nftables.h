// nftables through libnftnl and libmnl: a consistent dump of tables, chains and rules, and atomic
// batches of changes. No `nft` process.
//
// Expressions cross this layer generically, as libnftnl holds them: a name and the attributes
// libnftnl says are set, each named and typed by one static table (NftExprAttrs). TypeScript knows
// what the attributes mean; this layer only knows how to carry them, so an expression it has no
// table entries for still comes back (with just its name) instead of failing the dump.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct nlmsghdr;

namespace nodenet {

using NftBytes = std::vector<uint8_t>;

// How one attribute travels: the libnftnl getter/setter it needs and the JS type it becomes.
enum class NftAttrType {
  kU8,
  kU16,
  kU32,
  kS32,     // a u32 in libnftnl that means a signed number (immediate verdict)
  kU64,     // bigint in JS
  kString,
  kData,    // a value register (cmp data, bitwise mask, ...): at most NFT_DATA_VALUE_MAXLEN bytes
  kXtInfo,  // an xtables match/target payload (compat expressions), any length
};

struct NftExprAttr {
  const char* expr;  // expression name, as libnftnl and the kernel know it
  const char* key;   // JS key: the NFTNL_EXPR_<TYPE>_<ATTR> suffix in lower case
  uint16_t id;       // NFTNL_EXPR_* attribute
  NftAttrType type;
};

// Every attribute nodenet carries, grouped by expression.
const std::vector<NftExprAttr>& NftExprAttrs();
// The attribute `key` of expression `expr`, or nullptr.
const NftExprAttr* FindNftExprAttr(const std::string& expr, const std::string& key);
// Whether the table knows expression `expr` (possibly with no attributes, like notrack).
bool IsKnownNftExpr(const std::string& expr);
// "dreg, base, offset, ..." for error messages.
std::string NftExprAttrKeys(const std::string& expr);

struct NftAttr {
  const NftExprAttr* spec = nullptr;
  int64_t number = 0;  // kU8, kU16, kU32, kS32
  uint64_t u64 = 0;    // kU64
  std::string text;    // kString
  NftBytes bytes;      // kData, kXtInfo; also any attribute libnftnl handed back with an unexpected size
  bool raw = false;    // true: libnftnl's size disagreed with spec->type, bytes holds what it gave
};

struct NftExpr {
  std::string name;
  std::vector<NftAttr> attrs;
};

struct NftTable {
  uint32_t family = 0;
  std::string name;
  uint64_t handle = 0;
  uint32_t flags = 0;
  std::optional<NftBytes> userdata;
};

struct NftChain {
  uint32_t family = 0;
  std::string table;
  std::string name;
  uint64_t handle = 0;
  // Base chains only.
  std::optional<uint32_t> hook;
  std::optional<int32_t> priority;
  std::optional<std::string> type;
  std::optional<uint32_t> policy;
  std::optional<NftBytes> userdata;
};

struct NftRule {
  uint32_t family = 0;
  std::string table;
  std::string chain;
  uint64_t handle = 0;
  std::optional<NftBytes> userdata;
  std::vector<NftExpr> exprs;
};

// Which rules' counters a dump sums (see NftDumpRequest::counter_sums): a rule acts when one of its
// expressions is named in acting_exprs, or is an immediate whose verdict is in acting_verdicts.
struct NftCounterSumsRequest {
  std::vector<std::string> acting_exprs;
  std::vector<int32_t> acting_verdicts;  // NF_DROP 0, NF_ACCEPT 1, NFT_RETURN -5, ...
};

// One chain's acting rules, summed: the first counter expression of each (a rule without one adds
// nothing and is not counted).
struct NftChainCounterSum {
  uint32_t family = 0;
  std::string table;
  std::string chain;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint32_t rules = 0;  // acting rules whose counters were added
};

struct NftDumpRequest {
  uint32_t family = 0;               // NFPROTO_UNSPEC: every family
  std::optional<std::string> table;  // every table when absent
  bool rules = true;
  // When set, the rules are read (whatever `rules` says) but not kept: each is summed into `sums`
  // straight from its netlink message, so a large ruleset costs no per-rule objects.
  std::optional<NftCounterSumsRequest> counter_sums;
};

struct NftDump {
  uint32_t generation = 0;
  uint64_t netns_cookie = 0;  // of the namespace the dump was read in (see NftGeneration)
  std::vector<NftTable> tables;
  std::vector<NftChain> chains;
  std::vector<NftRule> rules;           // empty with counter_sums
  std::vector<NftChainCounterSum> sums;  // with counter_sums: one per chain that has rules, in dump order
};

// Everything the request selects, as of one ruleset generation: the generation is read before and
// after the dumps, and the whole read starts over when they differ or a dump was interrupted
// (NLM_F_DUMP_INTR); after kMaxNftDumpAttempts the read fails with EINTR. Reading creates nothing.
// Throws KernelError.
constexpr int kMaxNftDumpAttempts = 10;
NftDump DumpNftables(const NftDumpRequest& request);

struct NftGeneration {
  uint32_t generation = 0;
  // SO_NETNS_COOKIE (Linux 5.14+): names the namespace for the whole boot and is never reused, so
  // unlike an inode number or a path it tells a re-created namespace from the one it replaced.
  uint64_t netns_cookie = 0;
};

// The current ruleset generation (one NFT_MSG_GETGEN) and the cookie of the calling thread's netns,
// both read on one socket. Throws KernelError.
NftGeneration ReadNftGeneration();

// One NFT_MSG_NEWRULE message as the dump reads it. A rule holding an expression libnftnl does not
// know (one newer than the library) still parses: that expression comes back with just its name.
NftRule ParseNftRule(const nlmsghdr* message);

enum class NftOpKind { kAddTable, kDeleteTable, kAddChain, kDeleteChain, kFlushChain, kAddRule, kDeleteRule };

const char* NftOpName(NftOpKind kind);  // "addTable", ...

struct NftOp {
  NftOpKind kind = NftOpKind::kAddTable;
  uint32_t family = 0;
  std::string table;
  std::string chain;                 // every kind but the table ones
  std::optional<NftBytes> userdata;  // addTable, addRule
  // addChain: a base chain when hook is set (priority then too).
  std::optional<uint32_t> hook;
  std::optional<int32_t> priority;
  std::optional<std::string> type;
  std::optional<uint32_t> policy;
  // addRule
  std::vector<NftExpr> exprs;
  std::optional<uint64_t> position;  // insert after the rule with this handle
  // deleteRule
  uint64_t handle = 0;
};

struct NftCommitRequest {
  // Sent as NFNL_BATCH_GENID: the kernel refuses the whole batch with ERESTART when the ruleset
  // generation is no longer this one.
  std::optional<uint32_t> generation;
  std::vector<NftOp> ops;
  // Every addRule also asks for NLM_F_ECHO: the kernel sends each created rule back when the batch
  // commits, which is how its handle becomes known without a dump.
  bool echo = false;
};

struct NftCommitResult {
  std::vector<uint64_t> handles;  // with echo: the handle of each addRule, in op order; else empty
  uint64_t netns_cookie = 0;      // of the namespace the batch went to (see NftGeneration)
};

// Sends the ops as one nfnetlink batch, each acknowledged, and waits for every acknowledgement (and,
// with echo, every echoed rule). The kernel applies all or nothing. A failing op is reported with
// its object ("table ip t chain c rule 3"), its index, errno and the kernel's extended ack; a stale
// generation with ERESTART. Throws KernelError.
NftCommitResult CommitNftables(const NftCommitRequest& request);

// "ip", "ip6", "inet", "arp", "bridge", "netdev", or "family N".
std::string NftFamilyName(uint32_t family);

}  // namespace nodenet
