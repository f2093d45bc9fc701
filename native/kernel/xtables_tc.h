// libiptc's two families behind one set of names, for the read and write paths. Internal to
// native/kernel.
#pragma once

// libiptc must be included before any <linux/if*.h>; its headers pull in the kernel's own.
#include <libiptc/libiptc.h>
// Unlike libiptc.h, libip6tc.h declares its functions without extern "C".
extern "C" {
#include <libiptc/libip6tc.h>
}

#include <mutex>
#include <string>
#include <vector>

#include "xtables.h"

namespace nodenet {

// libiptc keeps process-wide state (its last-error context among it); one caller at a time.
extern std::mutex libiptc_mutex;

struct Ip4Tc {
  using Entry = ipt_entry;
  static constexpr const char* kNamesFile = "/proc/thread-self/net/ip_tables_names";
  static constexpr size_t kIpSize = sizeof(ipt_ip);
  static xtc_handle* Init(const char* table) { return iptc_init(table); }
  static void Free(xtc_handle* h) { iptc_free(h); }
  static const char* FirstChain(xtc_handle* h) { return iptc_first_chain(h); }
  static const char* NextChain(xtc_handle* h) { return iptc_next_chain(h); }
  static const Entry* FirstRule(const char* chain, xtc_handle* h) { return iptc_first_rule(chain, h); }
  static const Entry* NextRule(const Entry* e, xtc_handle* h) { return iptc_next_rule(e, h); }
  static const char* Target(const Entry* e, xtc_handle* h) { return iptc_get_target(e, h); }
  static bool Builtin(const char* chain, xtc_handle* h) { return iptc_builtin(chain, h) != 0; }
  static const char* Policy(const char* chain, xt_counters* c, xtc_handle* h) { return iptc_get_policy(chain, c, h); }
  static int References(unsigned* refs, const char* chain, xtc_handle* h) { return iptc_get_references(refs, chain, h); }
  static const char* StrError(int err) { return iptc_strerror(err); }
  static bool IsChain(const char* chain, xtc_handle* h) { return iptc_is_chain(chain, h) != 0; }
  static int CreateChain(const char* chain, xtc_handle* h) { return iptc_create_chain(chain, h); }
  static int FlushEntries(const char* chain, xtc_handle* h) { return iptc_flush_entries(chain, h); }
  static int DeleteChain(const char* chain, xtc_handle* h) { return iptc_delete_chain(chain, h); }
  static int InsertEntry(const char* chain, const Entry* e, unsigned n, xtc_handle* h) { return iptc_insert_entry(chain, e, n, h); }
  static int DeleteNumEntry(const char* chain, unsigned n, xtc_handle* h) { return iptc_delete_num_entry(chain, n, h); }
  static int Commit(xtc_handle* h) { return iptc_commit(h); }
};

struct Ip6Tc {
  using Entry = ip6t_entry;
  static constexpr const char* kNamesFile = "/proc/thread-self/net/ip6_tables_names";
  static constexpr size_t kIpSize = sizeof(ip6t_ip6);
  static xtc_handle* Init(const char* table) { return ip6tc_init(table); }
  static void Free(xtc_handle* h) { ip6tc_free(h); }
  static const char* FirstChain(xtc_handle* h) { return ip6tc_first_chain(h); }
  static const char* NextChain(xtc_handle* h) { return ip6tc_next_chain(h); }
  static const Entry* FirstRule(const char* chain, xtc_handle* h) { return ip6tc_first_rule(chain, h); }
  static const Entry* NextRule(const Entry* e, xtc_handle* h) { return ip6tc_next_rule(e, h); }
  static const char* Target(const Entry* e, xtc_handle* h) { return ip6tc_get_target(e, h); }
  static bool Builtin(const char* chain, xtc_handle* h) { return ip6tc_builtin(chain, h) != 0; }
  static const char* Policy(const char* chain, xt_counters* c, xtc_handle* h) { return ip6tc_get_policy(chain, c, h); }
  static int References(unsigned* refs, const char* chain, xtc_handle* h) { return ip6tc_get_references(refs, chain, h); }
  static const char* StrError(int err) { return ip6tc_strerror(err); }
  static bool IsChain(const char* chain, xtc_handle* h) { return ip6tc_is_chain(chain, h) != 0; }
  static int CreateChain(const char* chain, xtc_handle* h) { return ip6tc_create_chain(chain, h); }
  static int FlushEntries(const char* chain, xtc_handle* h) { return ip6tc_flush_entries(chain, h); }
  static int DeleteChain(const char* chain, xtc_handle* h) { return ip6tc_delete_chain(chain, h); }
  static int InsertEntry(const char* chain, const Entry* e, unsigned n, xtc_handle* h) { return ip6tc_insert_entry(chain, e, n, h); }
  static int DeleteNumEntry(const char* chain, unsigned n, xtc_handle* h) { return ip6tc_delete_num_entry(chain, n, h); }
  static int Commit(xtc_handle* h) { return ip6tc_commit(h); }
};

std::string TableObject(IpFamily family, const std::string& table);

}  // namespace nodenet
