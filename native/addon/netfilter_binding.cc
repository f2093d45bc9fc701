// netfilter.* entry points (legacy xtables through libiptc).
#include "../kernel/xtables.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

IpFamily FamilyArgument(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  if (info.Length() > i && info[i].IsNumber()) {
    int n = info[i].As<Napi::Number>().Int32Value();
    if (n == 4) return IpFamily::kIPv4;
    if (n == 6) return IpFamily::kIPv6;
  }
  throw Napi::TypeError::New(info.Env(), std::string(fn) + ": family must be 4 or 6");
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

}  // namespace

void RegisterNetfilter(Napi::Env env, Napi::Object exports) {
  exports.Set("listTables", Napi::Function::New(env, ListTablesBinding, "listTables"));
  exports.Set("readTable", Napi::Function::New(env, ReadTableBinding, "readTable"));
}

}  // namespace nodenet
