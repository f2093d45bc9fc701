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

}  // namespace nodenet
