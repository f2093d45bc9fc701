// netfilter.* entry points (legacy xtables through libiptc).
#include "../kernel/xtables.h"

#include <algorithm>

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

IpFamily FamilyFrom(Napi::Value v, const char* fn) {
  if (v.IsNumber()) {
    int n = v.As<Napi::Number>().Int32Value();
    if (n == 4) return IpFamily::kIPv4;
    if (n == 6) return IpFamily::kIPv6;
  }
  throw Napi::TypeError::New(v.Env(), std::string(fn) + ": family must be 4 or 6");
}

IpFamily FamilyArgument(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  return FamilyFrom(info.Length() > i ? info[i] : info.Env().Undefined(), fn);
}

Napi::Object ExtensionToJs(Napi::Env env, const XtExtension& ext) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", ext.name);
  o.Set("revision", ext.revision);
  o.Set("data", ToBuffer(env, ext.data));
  return o;
}

class ListTablesJob : public Job {
 public:
  ListTablesJob(Napi::Env env, std::string netns, IpFamily family)
      : Job(env, "netfilter.tables", std::move(netns)), family_(family) {}

 protected:
  void Execute() override { names_ = ListXtTables(family_); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, names_.size());
    for (size_t i = 0; i < names_.size(); ++i) out.Set(i, names_[i]);
    return out;
  }

 private:
  IpFamily family_;
  std::vector<std::string> names_;
};

class ReadTableJob : public Job {
 public:
  ReadTableJob(Napi::Env env, std::string netns, IpFamily family, std::string table)
      : Job(env, "netfilter.read", std::move(netns)), family_(family), table_(std::move(table)) {}

 protected:
  void Execute() override { snapshot_ = ReadXtTable(family_, table_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("family", snapshot_.family == IpFamily::kIPv4 ? 4 : 6);
    out.Set("name", snapshot_.name);
    Napi::Array chains = Napi::Array::New(env, snapshot_.chains.size());
    for (size_t c = 0; c < snapshot_.chains.size(); ++c) {
      const XtChain& chain = snapshot_.chains[c];
      Napi::Object jc = Napi::Object::New(env);
      jc.Set("name", chain.name);
      jc.Set("builtin", chain.builtin);
      jc.Set("policy", chain.policy);
      jc.Set("packets", Napi::BigInt::New(env, chain.packets));
      jc.Set("bytes", Napi::BigInt::New(env, chain.bytes));
      jc.Set("references", chain.references);
      Napi::Array rules = Napi::Array::New(env, chain.rules.size());
      for (size_t r = 0; r < chain.rules.size(); ++r) {
        const XtRule& rule = chain.rules[r];
        Napi::Object jr = Napi::Object::New(env);
        jr.Set("ip", ToBuffer(env, rule.ip));
        jr.Set("packets", Napi::BigInt::New(env, rule.packets));
        jr.Set("bytes", Napi::BigInt::New(env, rule.bytes));
        Napi::Array matches = Napi::Array::New(env, rule.matches.size());
        for (size_t m = 0; m < rule.matches.size(); ++m) matches.Set(m, ExtensionToJs(env, rule.matches[m]));
        jr.Set("matches", matches);
        jr.Set("target", ExtensionToJs(env, rule.target));
        jr.Set("verdict", rule.verdict);
        rules.Set(r, jr);
      }
      jc.Set("rules", rules);
      chains.Set(c, jc);
    }
    out.Set("chains", chains);
    return out;
  }

 private:
  IpFamily family_;
  std::string table_;
  XtTable snapshot_;
};

class CounterSumsJob : public Job {
 public:
  CounterSumsJob(Napi::Env env, std::string netns, XtCounterSumsRequest request)
      : Job(env, "netfilter.counterSums", std::move(netns)), request_(std::move(request)) {}

 protected:
  void Execute() override { sums_ = SumXtCounters(request_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, sums_.size());
    for (size_t i = 0; i < sums_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("chain", sums_[i].chain);
      o.Set("packets", Napi::BigInt::New(env, sums_[i].packets));
      o.Set("bytes", Napi::BigInt::New(env, sums_[i].bytes));
      o.Set("rules", sums_[i].rules);
      out.Set(i, o);
    }
    return out;
  }

 private:
  XtCounterSumsRequest request_;
  std::vector<XtChainCounterSum> sums_;
};

class ApplyTableJob : public Job {
 public:
  ApplyTableJob(Napi::Env env, std::string netns, XtApplySpec spec)
      : Job(env, spec.dry_run ? "netfilter.diff" : "netfilter.apply", std::move(netns)), spec_(std::move(spec)) {}

 protected:
  void Execute() override { result_ = ApplyXtTable(spec_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array changes = Napi::Array::New(env, result_.changes.size());
    for (size_t i = 0; i < result_.changes.size(); ++i) changes.Set(i, result_.changes[i]);
    out.Set("changes", changes);
    out.Set("committed", result_.committed);
    out.Set("attempts", result_.attempts);
    out.Set("lockWaitMs", result_.lock_wait_ms);
    out.Set("lockHoldMs", result_.lock_hold_ms);
    out.Set("readMs", result_.read_ms);
    out.Set("commitMs", result_.commit_ms);
    return out;
  }

 private:
  XtApplySpec spec_;
  XtApplyResult result_;
};

// Reading the apply request. Only the shapes are checked here (what would otherwise crash); what
// the rules mean was validated in TypeScript.
Napi::Object ObjectAt(Napi::Value v, const std::string& what) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "applyTable: " + what + " must be an object");
  return v.As<Napi::Object>();
}

Napi::Array ArrayAt(Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), "applyTable: " + what + "." + key + " must be an array");
  return v.As<Napi::Array>();
}

std::string StringAt(Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), "applyTable: " + what + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// The packed rules apply.ts writes (see RawApplySpec in lib/kernel/native.ts): per rule a u16le
// header length and the header, a u8 match count, per match u8 name length, name, u8 revision,
// u32le payload length and payload, then the target the same way after a u8 "standard" flag. One
// Buffer per chain instead of an object per rule: fetching each property through N-API cost more
// than the kernel's commit at a few thousand rules.
class PackedRules {
 public:
  PackedRules(Napi::Env env, const uint8_t* data, size_t size, std::string what)
      : env_(env), p_(data), size_(size), what_(std::move(what)) {}

  bool Done() const { return at_ == size_; }

  XtRuleSpec Next() {
    XtRuleSpec rule;
    size_t ip_size = U8();
    ip_size |= static_cast<size_t>(U8()) << 8;
    rule.ip = Bytes(ip_size);
    unsigned matches = U8();
    rule.matches.reserve(matches);
    for (unsigned i = 0; i < matches; ++i) {
      XtExtension m;
      m.name = String(U8());
      m.revision = U8();
      m.data = Bytes(U32());
      rule.matches.push_back(std::move(m));
    }
    rule.standard = U8() != 0;
    rule.target = String(U8());
    rule.target_revision = U8();
    rule.target_data = Bytes(U32());
    return rule;
  }

 private:
  void Need(size_t n) {
    if (size_ - at_ < n) {
      throw Napi::RangeError::New(env_, "applyTable: " + what_ + " is truncated at byte " + std::to_string(at_));
    }
  }
  uint8_t U8() {
    Need(1);
    return p_[at_++];
  }
  uint32_t U32() {
    Need(4);
    uint32_t v = static_cast<uint32_t>(p_[at_]) | static_cast<uint32_t>(p_[at_ + 1]) << 8 | static_cast<uint32_t>(p_[at_ + 2]) << 16 |
                 static_cast<uint32_t>(p_[at_ + 3]) << 24;
    at_ += 4;
    return v;
  }
  std::vector<uint8_t> Bytes(size_t n) {
    Need(n);
    std::vector<uint8_t> v(p_ + at_, p_ + at_ + n);
    at_ += n;
    return v;
  }
  std::string String(size_t n) {
    Need(n);
    std::string v(reinterpret_cast<const char*>(p_ + at_), n);
    at_ += n;
    return v;
  }

  Napi::Env env_;
  const uint8_t* p_;
  size_t size_;
  std::string what_;
  size_t at_ = 0;
};

Napi::Buffer<uint8_t> BufferAt(Napi::Object o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsBuffer()) throw Napi::TypeError::New(o.Env(), "applyTable: " + what + "." + key + " must be a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

// applyTable({family, table, ownedPrefix, chains, jumps, lockTimeoutMs, dryRun}, netns?): Promise<RawApplyResult>
Napi::Value ApplyTableBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = ObjectAt(info.Length() > 0 ? info[0] : env.Undefined(), "spec");
  XtApplySpec spec;
  spec.family = FamilyFrom(o.Get("family"), "applyTable");
  spec.table = StringAt(o, "table", "spec");
  if (spec.table.empty() || spec.table.size() >= 32) throw Napi::RangeError::New(env, "applyTable: table name must be 1-31 bytes");
  spec.owned_prefix = StringAt(o, "ownedPrefix", "spec");
  if (spec.owned_prefix.empty()) throw Napi::RangeError::New(env, "applyTable: ownedPrefix must not be empty");
  Napi::Array chains = ArrayAt(o, "chains", "spec");
  for (uint32_t i = 0; i < chains.Length(); ++i) {
    std::string what = "spec.chains[" + std::to_string(i) + "]";
    Napi::Object c = ObjectAt(chains.Get(i), what);
    XtChainSpec chain;
    chain.name = StringAt(c, "name", what);
    Napi::Value count = c.Get("count");
    if (!count.IsNumber() || count.As<Napi::Number>().DoubleValue() < 0) {
      throw Napi::TypeError::New(env, "applyTable: " + what + ".count must be a number of rules");
    }
    size_t expected = static_cast<size_t>(count.As<Napi::Number>().DoubleValue());
    Napi::Buffer<uint8_t> packed = BufferAt(c, "rules", what);
    PackedRules rules(env, packed.Data(), packed.Length(), what + ".rules");
    chain.rules.reserve(expected);
    while (!rules.Done()) chain.rules.push_back(rules.Next());
    if (chain.rules.size() != expected) {
      throw Napi::RangeError::New(env, "applyTable: " + what + ".rules holds " + std::to_string(chain.rules.size()) + " rules, not " + std::to_string(expected));
    }
    spec.chains.push_back(std::move(chain));
  }
  Napi::Array jumps = ArrayAt(o, "jumps", "spec");
  for (uint32_t i = 0; i < jumps.Length(); ++i) {
    std::string what = "spec.jumps[" + std::to_string(i) + "]";
    Napi::Object j = ObjectAt(jumps.Get(i), what);
    Napi::Buffer<uint8_t> packed = BufferAt(j, "rule", what);
    PackedRules rule(env, packed.Data(), packed.Length(), what + ".rule");
    XtJumpSpec jump{StringAt(j, "chain", what), rule.Next()};
    if (!rule.Done()) throw Napi::RangeError::New(env, "applyTable: " + what + ".rule holds more than one rule");
    spec.jumps.push_back(std::move(jump));
  }
  Napi::Value timeout = o.Get("lockTimeoutMs");
  if (timeout.IsNumber()) spec.lock_timeout_ms = std::max(0, timeout.As<Napi::Number>().Int32Value());
  spec.dry_run = o.Get("dryRun").ToBoolean();
  std::string netns = NetnsArgument(info, 1, "applyTable");
  return PoolOf(env).Submit(env, std::make_unique<ApplyTableJob>(env, netns, std::move(spec)));
}

// listTables(family: 4|6, netns?: string): Promise<string[]>
Napi::Value ListTablesBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IpFamily family = FamilyArgument(info, 0, "listTables");
  std::string netns = NetnsArgument(info, 1, "listTables");
  return PoolOf(env).Submit(env, std::make_unique<ListTablesJob>(env, netns, family));
}

// readTable(family: 4|6, table: string, netns?: string): Promise<RawTable>
Napi::Value ReadTableBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IpFamily family = FamilyArgument(info, 0, "readTable");
  std::string table = StringArgument(info, 1, "readTable", "table");
  // The kernel's table names are at most XT_TABLE_MAXNAMELEN-1 bytes; libiptc copies into such a buffer.
  if (table.empty() || table.size() >= 32) throw Napi::RangeError::New(env, "readTable: table name must be 1-31 bytes");
  std::string netns = NetnsArgument(info, 2, "readTable");
  return PoolOf(env).Submit(env, std::make_unique<ReadTableJob>(env, netns, family, table));
}

// tableCounterSums(family: 4|6, table, chainPrefix, actingTargets: string[], netns?): Promise<RawChainCounterSum[]>
Napi::Value TableCounterSumsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "tableCounterSums";
  XtCounterSumsRequest request;
  request.family = FamilyArgument(info, 0, fn);
  request.table = StringArgument(info, 1, fn, "table");
  if (request.table.empty() || request.table.size() >= 32) throw Napi::RangeError::New(env, "tableCounterSums: table name must be 1-31 bytes");
  request.chain_prefix = StringArgument(info, 2, fn, "chainPrefix");
  Napi::Value targets = info.Length() > 3 ? info[3] : env.Undefined();
  if (!targets.IsArray()) throw Napi::TypeError::New(env, "tableCounterSums: actingTargets must be an array of strings");
  Napi::Array list = targets.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value name = list.Get(i);
    if (!name.IsString()) throw Napi::TypeError::New(env, "tableCounterSums: actingTargets[" + std::to_string(i) + "] must be a string");
    request.acting_targets.push_back(name.As<Napi::String>().Utf8Value());
  }
  std::string netns = NetnsArgument(info, 4, fn);
  return PoolOf(env).Submit(env, std::make_unique<CounterSumsJob>(env, netns, std::move(request)));
}

}  // namespace

void RegisterNetfilter(Napi::Env env, Napi::Object exports) {
  exports.Set("listTables", Napi::Function::New(env, ListTablesBinding, "listTables"));
  exports.Set("readTable", Napi::Function::New(env, ReadTableBinding, "readTable"));
  exports.Set("tableCounterSums", Napi::Function::New(env, TableCounterSumsBinding, "tableCounterSums"));
  exports.Set("applyTable", Napi::Function::New(env, ApplyTableBinding, "applyTable"));
}

}  // namespace nodenet
