#include "xtables_tc.h"

#include <errno.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>

#include "error.h"

namespace nodenet {

std::mutex libiptc_mutex;

std::string TableObject(IpFamily family, const std::string& table) {
  return "table " + table + " (" + FamilyName(family) + ")";
}

namespace {

// The table names, or nothing when the kernel has no legacy iptables at all (no ip_tables module).
template <class Tc>
std::optional<std::vector<std::string>> ListNames(IpFamily family) {
  std::ifstream in(Tc::kNamesFile);
  if (!in) {
    int err = errno;
    if (err == ENOENT) return std::nullopt;
    std::string why = (err == EACCES || err == EPERM) ? "reading legacy iptables needs CAP_NET_ADMIN"
                                                      : "cannot read " + std::string(Tc::kNamesFile);
    throw KernelError(err, std::string("tables (") + FamilyName(family) + ")", why);
  }
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

template <class Entry>
XtExtension CopyExtension(const char* name, uint8_t revision, const void* payload, size_t size) {
  XtExtension ext;
  ext.name.assign(name, strnlen(name, XT_EXTENSION_MAXNAMELEN));
  ext.revision = revision;
  const auto* bytes = static_cast<const uint8_t*>(payload);
  ext.data.assign(bytes, bytes + size);
  return ext;
}

template <class Tc>
XtRule CopyRule(const typename Tc::Entry* e, xtc_handle* h) {
  XtRule rule;
  const auto* ip = reinterpret_cast<const uint8_t*>(e);  // the ip header is the entry's first member
  rule.ip.assign(ip, ip + Tc::kIpSize);
  rule.packets = e->counters.pcnt;
  rule.bytes = e->counters.bcnt;
  const auto* base = reinterpret_cast<const uint8_t*>(e);
  for (size_t off = sizeof(typename Tc::Entry); off < e->target_offset;) {
    const auto* m = reinterpret_cast<const xt_entry_match*>(base + off);
    if (m->u.match_size < sizeof(xt_entry_match) || off + m->u.match_size > e->target_offset) break;
    rule.matches.push_back(CopyExtension<typename Tc::Entry>(m->u.user.name, m->u.user.revision, m->data,
                                                             m->u.match_size - sizeof(xt_entry_match)));
    off += m->u.match_size;
  }
  const auto* t = reinterpret_cast<const xt_entry_target*>(base + e->target_offset);
  size_t tsize = t->u.target_size >= sizeof(xt_entry_target) ? t->u.target_size - sizeof(xt_entry_target) : 0;
  rule.target = CopyExtension<typename Tc::Entry>(t->u.user.name, t->u.user.revision, t->data, tsize);
  if (const char* verdict = Tc::Target(e, h)) rule.verdict = verdict;
  return rule;
}

// libiptc's handle of one table as the kernel holds it now; the caller holds libiptc_mutex.
template <class Tc>
std::unique_ptr<xtc_handle, void (*)(xtc_handle*)> InitTable(const std::string& table, const std::string& object) {
  std::unique_ptr<xtc_handle, void (*)(xtc_handle*)> handle(Tc::Init(table.c_str()), Tc::Free);
  if (!handle) {
    int err = errno;
    throw KernelError(err, object, std::string("cannot read table: ") + Tc::StrError(err));
  }
  return handle;
}

template <class Tc>
std::vector<XtChainCounterSum> Sum(const XtCounterSumsRequest& request) {
  std::optional<std::vector<std::string>> existing = ListNames<Tc>(request.family);
  if (!existing || std::find(existing->begin(), existing->end(), request.table) == existing->end()) return {};

  std::lock_guard<std::mutex> lock(libiptc_mutex);
  auto handle = InitTable<Tc>(request.table, TableObject(request.family, request.table));
  xtc_handle* h = handle.get();
  std::vector<XtChainCounterSum> out;
  for (const char* name = Tc::FirstChain(h); name != nullptr; name = Tc::NextChain(h)) {
    if (std::strncmp(name, request.chain_prefix.c_str(), request.chain_prefix.size()) != 0) continue;
    XtChainCounterSum sum;
    sum.chain = name;
    for (const auto* e = Tc::FirstRule(name, h); e != nullptr; e = Tc::NextRule(e, h)) {
      const char* target = Tc::Target(e, h);
      if (target == nullptr ||
          std::find(request.acting_targets.begin(), request.acting_targets.end(), target) == request.acting_targets.end()) {
        continue;
      }
      sum.packets += e->counters.pcnt;
      sum.bytes += e->counters.bcnt;
      ++sum.rules;
    }
    out.push_back(std::move(sum));
  }
  return out;
}

template <class Tc>
XtTable Read(IpFamily family, const std::string& table) {
  const std::string object = TableObject(family, table);
  std::optional<std::vector<std::string>> existing = ListNames<Tc>(family);
  if (!existing) {
    throw KernelError(ENOENT, object, "legacy iptables is not available in this kernel (no ip_tables module)");
  }
  if (std::find(existing->begin(), existing->end(), table) == existing->end()) {
    throw KernelError(ENOENT, object, "table does not exist in this network namespace");
  }

  std::lock_guard<std::mutex> lock(libiptc_mutex);
  auto handle = InitTable<Tc>(table, object);
  XtTable out;
  out.family = family;
  out.name = table;
  xtc_handle* h = handle.get();
  for (const char* name = Tc::FirstChain(h); name != nullptr; name = Tc::NextChain(h)) {
    XtChain chain;
    chain.name = name;
    chain.builtin = Tc::Builtin(name, h);
    if (chain.builtin) {
      xt_counters counters{};
      if (const char* policy = Tc::Policy(name, &counters, h)) chain.policy = policy;
      chain.packets = counters.pcnt;
      chain.bytes = counters.bcnt;
    } else {
      Tc::References(&chain.references, name, h);
    }
    for (const auto* e = Tc::FirstRule(name, h); e != nullptr; e = Tc::NextRule(e, h)) {
      chain.rules.push_back(CopyRule<Tc>(e, h));
    }
    out.chains.push_back(std::move(chain));
  }
  return out;
}

}  // namespace

const char* FamilyName(IpFamily family) { return family == IpFamily::kIPv4 ? "ipv4" : "ipv6"; }

std::vector<std::string> ListXtTables(IpFamily family) {
  auto names = family == IpFamily::kIPv4 ? ListNames<Ip4Tc>(family) : ListNames<Ip6Tc>(family);
  return names.value_or(std::vector<std::string>{});
}

XtTable ReadXtTable(IpFamily family, const std::string& table) {
  return family == IpFamily::kIPv4 ? Read<Ip4Tc>(family, table) : Read<Ip6Tc>(family, table);
}

std::vector<XtChainCounterSum> SumXtCounters(const XtCounterSumsRequest& request) {
  return request.family == IpFamily::kIPv4 ? Sum<Ip4Tc>(request) : Sum<Ip6Tc>(request);
}

}  // namespace nodenet
