// Reading legacy iptables tables through libiptc.
//
// The addon decodes nothing beyond the entry framing: the fixed ip header, each match and the target
// are handed over as bytes with their names and revisions, and TypeScript decodes what it knows. So a
// match nodenet has never heard of is carried along intact instead of being dropped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nodenet {

enum class IpFamily { kIPv4, kIPv6 };

const char* FamilyName(IpFamily family);

struct XtExtension {
  std::string name;           // "" for the standard target (verdicts and jumps)
  uint8_t revision = 0;
  std::vector<uint8_t> data;  // the payload after struct xt_entry_match / xt_entry_target
};

struct XtRule {
  std::vector<uint8_t> ip;    // struct ipt_ip or struct ip6t_ip6, as the kernel holds it
  uint64_t packets = 0;
  uint64_t bytes = 0;
  std::vector<XtExtension> matches;
  XtExtension target;
  std::string verdict;        // iptc_get_target(): ACCEPT/DROP/RETURN/QUEUE, a chain name, "" to fall through,
                              // or the extension's name
};

struct XtChain {
  std::string name;
  bool builtin = false;
  std::string policy;         // builtin chains only
  uint64_t packets = 0;       // policy counters, builtin chains only
  uint64_t bytes = 0;
  unsigned references = 0;    // user chains only
  std::vector<XtRule> rules;
};

struct XtTable {
  IpFamily family = IpFamily::kIPv4;
  std::string name;
  std::vector<XtChain> chains;  // libiptc order: builtins in hook order, then user chains by name
};

// Names of the tables that exist in the calling thread's netns, from /proc/thread-self/net/
// ip{,6}_tables_names: asking libiptc would instantiate a table that does not exist yet.
std::vector<std::string> ListXtTables(IpFamily family);

// A snapshot of one table. Throws KernelError (ENOENT when the table does not exist; it is not created).
XtTable ReadXtTable(IpFamily family, const std::string& table);

// Which rules' counters SumXtCounters adds up: those in chains whose name starts with chain_prefix
// whose target is one of acting_targets, named as iptc_get_target names it (a standard verdict
// "DROP"/"ACCEPT"/..., an extension "DNAT", "CT"; a jump by its chain's name).
struct XtCounterSumsRequest {
  IpFamily family = IpFamily::kIPv4;
  std::string table;
  std::string chain_prefix;
  std::vector<std::string> acting_targets;
};

struct XtChainCounterSum {
  std::string chain;
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint32_t rules = 0;  // acting rules added
};

// One entry per chain whose name starts with the prefix (also those without an acting rule), in
// libiptc order. Reads like ReadXtTable (no xtables lock), but decodes nothing beyond each rule's
// target; a table that does not exist, or no legacy iptables at all, gives none. Throws KernelError.
std::vector<XtChainCounterSum> SumXtCounters(const XtCounterSumsRequest& request);

// One rule to write. The header and payloads are already encoded (by TypeScript); the addon only
// frames them into an entry and lets libiptc resolve a standard target's label.
struct XtRuleSpec {
  std::vector<uint8_t> ip;          // struct ipt_ip / ip6t_ip6
  std::vector<XtExtension> matches;
  bool standard = true;             // a verdict, a jump or fall-through, by label
  std::string target;               // label (ACCEPT, DROP, RETURN, QUEUE, a chain, "" to fall through) or extension name
  uint8_t target_revision = 0;      // extension targets only
  std::vector<uint8_t> target_data; // extension targets only
};

struct XtChainSpec {
  std::string name;
  std::vector<XtRuleSpec> rules;
};

// A rule in a chain nodenet does not own (a builtin) whose target is one of nodenet's chains.
struct XtJumpSpec {
  std::string chain;
  XtRuleSpec rule;
};

struct XtApplySpec {
  IpFamily family = IpFamily::kIPv4;
  std::string table;
  // Chains whose name starts with this are nodenet's: their complete content is `chains`, and one
  // that is not listed there is removed.
  std::string owned_prefix;
  std::vector<XtChainSpec> chains;
  // Every jump from a chain nodenet does not own into one it owns; others into owned chains go.
  std::vector<XtJumpSpec> jumps;
  int lock_timeout_ms = 5000;
  bool dry_run = false;  // compute the changes, commit nothing
};

struct XtApplyResult {
  std::vector<std::string> changes;  // what differed, one line each ("create chain X", ...)
  bool committed = false;
  int attempts = 0;                  // commits retried after a concurrent change (EAGAIN)
  double lock_wait_ms = 0;
  double lock_hold_ms = 0;
  // Inside lock_hold_ms, summed over attempts: reading the table (iptc_init: the kernel's copy of
  // the blob and libiptc's parse of it) and committing it (iptc_commit: assembling the new blob,
  // IPT_SO_SET_REPLACE and the counters). commit_ms alone is what replacing the table costs.
  double read_ms = 0;
  double commit_ms = 0;
};

// Makes the owned chains and the jumps into them what spec says, in one commit under the xtables
// lock, reading the table fresh inside the lock; commits nothing when nothing differs. A new jump
// is inserted first in its chain; one that exists is left where it is. Throws KernelError.
XtApplyResult ApplyXtTable(const XtApplySpec& spec);

}  // namespace nodenet
