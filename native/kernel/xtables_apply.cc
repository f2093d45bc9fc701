// Writing legacy iptables through libiptc: nodenet's chains and the jumps into them, diffed against
// a fresh read inside the xtables lock and committed once.
#include "xtables_tc.h"

#include <errno.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>

#include "error.h"
#include "xtables_lock.h"

namespace nodenet {

namespace {

constexpr int kMaxCommitAttempts = 3;

using Bytes = std::vector<uint8_t>;

// XT_ALIGN without the GNU typeof some kernel headers spell it with.
constexpr size_t XtAlign(size_t n) {
  constexpr size_t a = alignof(struct _xt_align);
  return (n + a - 1) & ~(a - 1);
}

[[noreturn]] void FailLibiptc(const std::string& object, const std::string& what, const char* (*strerror_fn)(int)) {
  int err = errno != 0 ? errno : EINVAL;
  throw KernelError(err, object, what + ": " + strerror_fn(err));
}

void CopyName(char* dst, size_t size, const std::string& name, const std::string& object) {
  if (name.size() >= size) {
    throw KernelError(ENAMETOOLONG, object, "name \"" + name + "\" is longer than " + std::to_string(size - 1) + " bytes");
  }
  std::memset(dst, 0, size);
  std::memcpy(dst, name.data(), name.size());
}

// The entry iptables would build for this rule: header, each match and the target, each payload
// padded to XT_ALIGN and every padding byte zero, so equal rules are equal bytes.
template <class Tc>
Bytes BuildEntry(const XtRuleSpec& r, const std::string& object) {
  using Entry = typename Tc::Entry;
  if (r.ip.size() != Tc::kIpSize) {
    throw KernelError(EINVAL, object, "rule header is " + std::to_string(r.ip.size()) + " bytes, not " + std::to_string(Tc::kIpSize));
  }
  size_t size = sizeof(Entry);
  for (const auto& m : r.matches) size += XtAlign(sizeof(xt_entry_match) + m.data.size());
  size_t target_size = r.standard ? XtAlign(sizeof(xt_standard_target)) : XtAlign(sizeof(xt_entry_target) + r.target_data.size());
  if (size + target_size > 0xffff) throw KernelError(E2BIG, object, "rule is larger than 64 KiB");

  Bytes buf(size + target_size, 0);
  auto* e = reinterpret_cast<Entry*>(buf.data());
  std::memcpy(buf.data(), r.ip.data(), r.ip.size());
  e->target_offset = static_cast<uint16_t>(size);
  e->next_offset = static_cast<uint16_t>(size + target_size);
  size_t off = sizeof(Entry);
  for (const auto& m : r.matches) {
    auto* em = reinterpret_cast<xt_entry_match*>(buf.data() + off);
    size_t msize = XtAlign(sizeof(xt_entry_match) + m.data.size());
    em->u.user.match_size = static_cast<uint16_t>(msize);
    CopyName(em->u.user.name, sizeof em->u.user.name, m.name, object);
    em->u.user.revision = m.revision;
    std::memcpy(em->data, m.data.data(), m.data.size());
    off += msize;
  }
  auto* t = reinterpret_cast<xt_entry_target*>(buf.data() + off);
  t->u.user.target_size = static_cast<uint16_t>(target_size);
  CopyName(t->u.user.name, sizeof t->u.user.name, r.target, object);
  if (!r.standard) {
    t->u.user.revision = r.target_revision;
    std::memcpy(t->data, r.target_data.data(), r.target_data.size());
  }
  return buf;
}

// Whether a rule read through libiptc is the rule we would write. Names are compared as strings:
// the kernel copies back only strlen+1 bytes of them.
template <class Tc>
bool SameRule(const typename Tc::Entry* have, xtc_handle* h, const Bytes& want_bytes, const XtRuleSpec& want) {
  using Entry = typename Tc::Entry;
  const auto* want_e = reinterpret_cast<const Entry*>(want_bytes.data());
  if (std::memcmp(have, want_e, Tc::kIpSize) != 0) return false;
  if (have->target_offset != want_e->target_offset) return false;
  const auto* hb = reinterpret_cast<const uint8_t*>(have);
  for (size_t off = sizeof(Entry); off < have->target_offset;) {
    const auto* hm = reinterpret_cast<const xt_entry_match*>(hb + off);
    const auto* wm = reinterpret_cast<const xt_entry_match*>(want_bytes.data() + off);
    if (hm->u.match_size != wm->u.match_size || hm->u.match_size < sizeof(xt_entry_match)) return false;
    if (std::strncmp(hm->u.user.name, wm->u.user.name, sizeof hm->u.user.name) != 0) return false;
    if (hm->u.user.revision != wm->u.user.revision) return false;
    if (std::memcmp(hm->data, wm->data, hm->u.match_size - sizeof(xt_entry_match)) != 0) return false;
    off += hm->u.match_size;
  }
  const auto* ht = reinterpret_cast<const xt_entry_target*>(hb + have->target_offset);
  const char* label = Tc::Target(have, h);
  if (want.standard) {
    return ht->u.user.name[0] == '\0' && label != nullptr && want.target == label;
  }
  const auto* wt = reinterpret_cast<const xt_entry_target*>(want_bytes.data() + want_e->target_offset);
  return ht->u.target_size == wt->u.target_size && std::strncmp(ht->u.user.name, wt->u.user.name, sizeof ht->u.user.name) == 0 &&
         ht->u.user.revision == wt->u.user.revision &&
         std::memcmp(ht->data, wt->data, ht->u.target_size - sizeof(xt_entry_target)) == 0;
}

template <class Tc>
std::vector<const typename Tc::Entry*> RulesOf(const std::string& chain, xtc_handle* h) {
  std::vector<const typename Tc::Entry*> rules;
  for (const auto* e = Tc::FirstRule(chain.c_str(), h); e != nullptr; e = Tc::NextRule(e, h)) rules.push_back(e);
  return rules;
}

std::string DescribeEdit(const std::string& chain, size_t at, size_t removed, size_t added, size_t had) {
  auto rules = [](size_t n) { return std::to_string(n) + (n == 1 ? " rule" : " rules"); };
  const std::string where = " at position " + std::to_string(at + 1);
  if (removed == 0) return "chain " + chain + ": add " + rules(added) + where;
  const std::string gone = rules(removed) + where + " of " + std::to_string(had);
  if (added == 0) return "chain " + chain + ": delete " + gone;
  return "chain " + chain + ": replace " + gone + " with " + rules(added);
}

// What applying spec to a table that does not exist yet would do, in the words Applier uses.
std::vector<std::string> DescribeCreation(const XtApplySpec& spec) {
  std::vector<std::string> changes{"create table " + spec.table};
  for (const auto& c : spec.chains) changes.push_back("create chain " + c.name);
  for (const auto& c : spec.chains) {
    if (!c.rules.empty()) changes.push_back(DescribeEdit(c.name, 0, 0, c.rules.size(), 0));
  }
  for (const auto& j : spec.jumps) changes.push_back("insert jump " + j.chain + " -> " + j.rule.target);
  return changes;
}

bool Owned(const std::string& chain, const std::string& prefix) {
  return !prefix.empty() && chain.compare(0, prefix.size(), prefix) == 0;
}

bool TableExists(IpFamily family, const std::string& table) {
  std::ifstream in(family == IpFamily::kIPv4 ? "/proc/thread-self/net/ip_tables_names" : "/proc/thread-self/net/ip6_tables_names");
  for (std::string line; std::getline(in, line);) {
    if (line == table) return true;
  }
  return false;
}

template <class Tc>
class Applier {
 public:
  Applier(const XtApplySpec& spec, xtc_handle* h, std::vector<std::string>& changes)
      : spec_(spec), h_(h), changes_(changes), object_(TableObject(spec.family, spec.table)) {}

  void Run() {
    std::vector<std::string> existing_owned;
    for (const char* c = Tc::FirstChain(h_); c != nullptr; c = Tc::NextChain(h_)) {
      if (Owned(c, spec_.owned_prefix)) existing_owned.emplace_back(c);
    }
    // Every chain first, so rules may jump to chains created in the same commit.
    for (const auto& chain : spec_.chains) {
      if (!Owned(chain.name, spec_.owned_prefix)) {
        throw KernelError(EINVAL, object_, "chain " + chain.name + " is not named " + spec_.owned_prefix + "*");
      }
      if (!Tc::IsChain(chain.name.c_str(), h_)) {
        Check(Tc::CreateChain(chain.name.c_str(), h_), "cannot create chain " + chain.name);
        changes_.push_back("create chain " + chain.name);
      }
    }
    for (const auto& chain : spec_.chains) SyncChain(chain);
    SyncJumps();
    // Chains nodenet no longer wants: emptied first, so none still jumps to another being deleted.
    std::vector<std::string> stale;
    for (const auto& name : existing_owned) {
      bool wanted = std::any_of(spec_.chains.begin(), spec_.chains.end(), [&](const XtChainSpec& c) { return c.name == name; });
      if (!wanted) stale.push_back(name);
    }
    for (const auto& name : stale) Check(Tc::FlushEntries(name.c_str(), h_), "cannot flush chain " + name);
    for (const auto& name : stale) {
      Check(Tc::DeleteChain(name.c_str(), h_), "cannot delete chain " + name);
      changes_.push_back("delete chain " + name);
    }
  }

 private:
  void Check(int ok, const std::string& what) {
    if (!ok) FailLibiptc(object_, what, Tc::StrError);
  }

  // Keeps the rules both versions share at the start and at the end (and their counters), and
  // replaces what lies between.
  void SyncChain(const XtChainSpec& chain) {
    std::vector<Bytes> want;
    for (const auto& r : chain.rules) want.push_back(BuildEntry<Tc>(r, object_ + " chain " + chain.name));
    auto have = RulesOf<Tc>(chain.name, h_);
    size_t prefix = 0;
    while (prefix < have.size() && prefix < want.size() && SameRule<Tc>(have[prefix], h_, want[prefix], chain.rules[prefix])) ++prefix;
    size_t suffix = 0;
    while (suffix < have.size() - prefix && suffix < want.size() - prefix &&
           SameRule<Tc>(have[have.size() - 1 - suffix], h_, want[want.size() - 1 - suffix], chain.rules[want.size() - 1 - suffix])) {
      ++suffix;
    }
    size_t removed = have.size() - prefix - suffix;
    size_t added = want.size() - prefix - suffix;
    if (removed == 0 && added == 0) return;
    for (size_t i = 0; i < removed; ++i) {
      Check(Tc::DeleteNumEntry(chain.name.c_str(), static_cast<unsigned>(prefix), h_), "cannot delete a rule of " + chain.name);
    }
    for (size_t i = 0; i < added; ++i) {
      const auto* e = reinterpret_cast<const typename Tc::Entry*>(want[prefix + i].data());
      Check(Tc::InsertEntry(chain.name.c_str(), e, static_cast<unsigned>(prefix + i), h_), "cannot add a rule to " + chain.name);
    }
    changes_.push_back(DescribeEdit(chain.name, prefix, removed, added, have.size()));
  }

  void SyncJumps() {
    std::vector<Bytes> want;
    for (const auto& j : spec_.jumps) {
      if (Owned(j.chain, spec_.owned_prefix)) throw KernelError(EINVAL, object_, "jump from " + j.chain + ": rules in nodenet's own chains belong in their content");
      if (!Owned(j.rule.target, spec_.owned_prefix) || !j.rule.standard) {
        throw KernelError(EINVAL, object_, "jump from " + j.chain + " must target a chain named " + spec_.owned_prefix + "*");
      }
      if (!Tc::IsChain(j.chain.c_str(), h_)) throw KernelError(ENOENT, object_, "chain " + j.chain + " does not exist");
      want.push_back(BuildEntry<Tc>(j.rule, object_ + " chain " + j.chain));
    }
    std::vector<bool> present(spec_.jumps.size(), false);
    std::vector<std::string> chains;
    for (const char* c = Tc::FirstChain(h_); c != nullptr; c = Tc::NextChain(h_)) {
      if (!Owned(c, spec_.owned_prefix)) chains.emplace_back(c);
    }
    for (const auto& chain : chains) {
      auto rules = RulesOf<Tc>(chain, h_);
      // Back to front, so deleting rule i leaves the numbers of the rules before it unchanged.
      std::vector<unsigned> doomed;
      for (size_t i = 0; i < rules.size(); ++i) {
        const char* label = Tc::Target(rules[i], h_);
        if (label == nullptr || !Owned(label, spec_.owned_prefix)) continue;
        bool keep = false;
        for (size_t j = 0; j < spec_.jumps.size() && !keep; ++j) {
          if (!present[j] && spec_.jumps[j].chain == chain && SameRule<Tc>(rules[i], h_, want[j], spec_.jumps[j].rule)) {
            present[j] = true;
            keep = true;
          }
        }
        if (!keep) {
          doomed.push_back(static_cast<unsigned>(i));
          changes_.push_back("delete jump " + chain + " -> " + label + " (rule " + std::to_string(i + 1) + ")");
        }
      }
      for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
        Check(Tc::DeleteNumEntry(chain.c_str(), *it, h_), "cannot delete a jump from " + chain);
      }
    }
    // Missing jumps go first in their chain; inserting the last first keeps the declared order.
    for (size_t j = spec_.jumps.size(); j-- > 0;) {
      if (present[j]) continue;
      const auto* e = reinterpret_cast<const typename Tc::Entry*>(want[j].data());
      Check(Tc::InsertEntry(spec_.jumps[j].chain.c_str(), e, 0, h_), "cannot insert a jump into " + spec_.jumps[j].chain);
      changes_.push_back("insert jump " + spec_.jumps[j].chain + " -> " + spec_.jumps[j].rule.target);
    }
  }

  const XtApplySpec& spec_;
  xtc_handle* h_;
  std::vector<std::string>& changes_;
  std::string object_;
};

template <class Tc>
XtApplyResult Apply(const XtApplySpec& spec) {
  const std::string object = TableObject(spec.family, spec.table);
  XtApplyResult result;
  XtablesLock lock(spec.lock_timeout_ms);
  auto held_since = std::chrono::steady_clock::now();
  result.lock_wait_ms = lock.waited_ms();
  auto finish = [&] {
    result.lock_hold_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - held_since).count();
    return result;
  };
  // Reading a table that does not exist would create it (libiptc instantiates it): with nothing to
  // own there is nothing to remove, and a dry run can say what creating it would do.
  if (!TableExists(spec.family, spec.table)) {
    if (spec.chains.empty() && spec.jumps.empty()) return finish();
    if (spec.dry_run) {
      result.changes = DescribeCreation(spec);
      return finish();
    }
  }

  std::lock_guard<std::mutex> guard(libiptc_mutex);
  auto since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
  };
  for (int attempt = 1;; ++attempt) {
    result.attempts = attempt;
    result.changes.clear();
    // Never a cached handle: read the table afresh inside the lock, in this thread's namespace.
    auto read_start = std::chrono::steady_clock::now();
    std::unique_ptr<xtc_handle, void (*)(xtc_handle*)> handle(Tc::Init(spec.table.c_str()), Tc::Free);
    int init_err = errno;
    result.read_ms += since(read_start);
    errno = init_err;
    if (!handle) FailLibiptc(object, "cannot read table", Tc::StrError);
    Applier<Tc>(spec, handle.get(), result.changes).Run();
    if (result.changes.empty() || spec.dry_run) return finish();
    auto commit_start = std::chrono::steady_clock::now();
    int committed = Tc::Commit(handle.get());
    int err = errno;
    result.commit_ms += since(commit_start);
    if (committed) {
      result.committed = true;
      return finish();
    }
    // EAGAIN: the table changed under us (a writer that does not take the lock). Read it again.
    if (err != EAGAIN || attempt == kMaxCommitAttempts) {
      errno = err;
      FailLibiptc(object, err == EINVAL ? "the kernel rejected the table (see dmesg)" : "cannot commit", Tc::StrError);
    }
  }
}

}  // namespace

XtApplyResult ApplyXtTable(const XtApplySpec& spec) {
  return spec.family == IpFamily::kIPv4 ? Apply<Ip4Tc>(spec) : Apply<Ip6Tc>(spec);
}

}  // namespace nodenet
