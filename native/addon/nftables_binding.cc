// nft.* entry points: nftables through libnftnl (lib/kernel/native.ts declares the JS shapes).
#include "../kernel/nftables.h"

#include <linux/netfilter/nf_tables.h>

#include <cmath>
#include <limits>

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

// ---------------------------------------------------------------------------------------------
// Reading requests. Every shape and range is checked here, on the JS thread, so a mistake is a
// TypeError (or RangeError) naming the exact path, never a kernel error or a crash.

[[noreturn]] void TypeError(Napi::Env env, const std::string& fn, const std::string& path, const std::string& what) {
  throw Napi::TypeError::New(env, fn + ": " + path + " " + what);
}

[[noreturn]] void RangeError(Napi::Env env, const std::string& fn, const std::string& path, const std::string& what) {
  throw Napi::RangeError::New(env, fn + ": " + path + " " + what);
}

bool Absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

Napi::Object ObjectOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  if (!v.IsObject() || v.IsArray()) TypeError(v.Env(), fn, path, "must be an object");
  return v.As<Napi::Object>();
}

// A whole number in [min, max].
int64_t IntegerOf(const Napi::Value& v, const std::string& fn, const std::string& path, int64_t min, int64_t max) {
  if (!v.IsNumber()) TypeError(v.Env(), fn, path, "must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d) RangeError(v.Env(), fn, path, "must be a whole number");
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    RangeError(v.Env(), fn, path, "must be from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int64_t>(d);
}

uint64_t U64Of(const Napi::Value& v, const std::string& fn, const std::string& path) {
  if (!v.IsBigInt()) TypeError(v.Env(), fn, path, "must be a bigint");
  bool lossless = false;
  // Not lossless for a negative bigint or one past 2^64-1, which would otherwise wrap.
  uint64_t value = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) RangeError(v.Env(), fn, path, "must be a bigint from 0 to 2^64-1");
  return value;
}

std::string StringOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  if (!v.IsString()) TypeError(v.Env(), fn, path, "must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) RangeError(v.Env(), fn, path, "must not contain NUL characters");
  return s;
}

// Table, chain and set names: the kernel's NFT_NAME_MAXLEN counts the terminating NUL.
std::string NameOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  std::string s = StringOf(v, fn, path);
  if (s.empty() || s.size() >= NFT_NAME_MAXLEN) RangeError(v.Env(), fn, path, "must be 1-" + std::to_string(NFT_NAME_MAXLEN - 1) + " bytes");
  return s;
}

NftBytes BytesOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  if (!v.IsBuffer()) TypeError(v.Env(), fn, path, "must be a Buffer");
  auto b = v.As<Napi::Buffer<uint8_t>>();
  return NftBytes(b.Data(), b.Data() + b.Length());
}

uint32_t FamilyOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  return static_cast<uint32_t>(IntegerOf(v, fn, path, 0, 255));
}

NftExpr ExprOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  Napi::Env env = v.Env();
  Napi::Object o = ObjectOf(v, fn, path);
  NftExpr expr;
  expr.name = StringOf(o.Get("name"), fn, path + ".name");
  if (!IsKnownNftExpr(expr.name)) TypeError(env, fn, path + ".name", "\"" + expr.name + "\" is not an expression nodenet can build");
  Napi::Array keys = o.GetPropertyNames();
  expr.attrs.reserve(keys.Length());
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    Napi::Value name = keys.Get(i);
    std::string key = name.ToString().Utf8Value();
    if (key == "name") continue;
    // By the key's own handle: a lookup by C string would make V8 internalize it again.
    Napi::Value value = o.Get(name);
    if (value.IsUndefined()) continue;  // an optional attribute left unset
    const std::string apath = path + "." + key;
    const NftExprAttr* spec = FindNftExprAttr(expr.name, key);
    if (spec == nullptr) {
      TypeError(env, fn, apath, "is not an attribute of " + expr.name + " (it has: " + NftExprAttrKeys(expr.name) + ")");
    }
    NftAttr a;
    a.spec = spec;
    switch (spec->type) {
      case NftAttrType::kU8: a.number = IntegerOf(value, fn, apath, 0, std::numeric_limits<uint8_t>::max()); break;
      case NftAttrType::kU16: a.number = IntegerOf(value, fn, apath, 0, std::numeric_limits<uint16_t>::max()); break;
      case NftAttrType::kU32: a.number = IntegerOf(value, fn, apath, 0, std::numeric_limits<uint32_t>::max()); break;
      case NftAttrType::kS32:
        a.number = IntegerOf(value, fn, apath, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
        break;
      case NftAttrType::kU64: a.u64 = U64Of(value, fn, apath); break;
      case NftAttrType::kString: a.text = StringOf(value, fn, apath); break;
      case NftAttrType::kData:
        a.bytes = BytesOf(value, fn, apath);
        if (a.bytes.size() > NFT_DATA_VALUE_MAXLEN) RangeError(env, fn, apath, "must be at most " + std::to_string(NFT_DATA_VALUE_MAXLEN) + " bytes");
        break;
      case NftAttrType::kXtInfo: a.bytes = BytesOf(value, fn, apath); break;
    }
    expr.attrs.push_back(std::move(a));
  }
  if (expr.name == "immediate") {
    auto has = [&](const char* key) { return !o.Get(key).IsUndefined(); };
    if (has("data") && (has("verdict") || has("chain"))) TypeError(env, fn, path, "loads data or a verdict (with its chain), not both");
    if (has("chain") && !has("verdict")) TypeError(env, fn, path + ".chain", "needs a verdict (NFT_JUMP or NFT_GOTO)");
  }
  return expr;
}

NftOpKind OpKindOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  static const NftOpKind kinds[] = {NftOpKind::kAddTable, NftOpKind::kDeleteTable, NftOpKind::kAddChain, NftOpKind::kDeleteChain,
                                    NftOpKind::kFlushChain, NftOpKind::kAddRule, NftOpKind::kDeleteRule};
  std::string name = StringOf(v, fn, path);
  for (NftOpKind k : kinds) {
    if (name == NftOpName(k)) return k;
  }
  TypeError(v.Env(), fn, path, "\"" + name + "\" is not one of addTable, deleteTable, addChain, deleteChain, flushChain, addRule, deleteRule");
}

NftOp OpOf(const Napi::Value& v, const std::string& fn, const std::string& path) {
  Napi::Env env = v.Env();
  Napi::Object o = ObjectOf(v, fn, path);
  NftOp op;
  op.kind = OpKindOf(o.Get("op"), fn, path + ".op");
  op.family = FamilyOf(o.Get("family"), fn, path + ".family");
  op.table = NameOf(o.Get("table"), fn, path + ".table");
  const bool table_op = op.kind == NftOpKind::kAddTable || op.kind == NftOpKind::kDeleteTable;
  if (!table_op) op.chain = NameOf(o.Get("chain"), fn, path + ".chain");
  switch (op.kind) {
    case NftOpKind::kAddTable:
    case NftOpKind::kAddRule:
      if (!Absent(o.Get("userdata"))) {
        op.userdata = BytesOf(o.Get("userdata"), fn, path + ".userdata");
        if (op.userdata->size() > NFT_USERDATA_MAXLEN) RangeError(env, fn, path + ".userdata", "must be at most " + std::to_string(NFT_USERDATA_MAXLEN) + " bytes");
      }
      break;
    default: break;
  }
  if (op.kind == NftOpKind::kAddChain) {
    const bool hook = !Absent(o.Get("hook"));
    if (hook) op.hook = static_cast<uint32_t>(IntegerOf(o.Get("hook"), fn, path + ".hook", 0, std::numeric_limits<uint32_t>::max()));
    if (!Absent(o.Get("priority"))) {
      op.priority = static_cast<int32_t>(IntegerOf(o.Get("priority"), fn, path + ".priority", std::numeric_limits<int32_t>::min(),
                                                   std::numeric_limits<int32_t>::max()));
    }
    if (!Absent(o.Get("type"))) op.type = NameOf(o.Get("type"), fn, path + ".type");
    if (!Absent(o.Get("policy"))) op.policy = static_cast<uint32_t>(IntegerOf(o.Get("policy"), fn, path + ".policy", 0, std::numeric_limits<uint32_t>::max()));
    // A base chain needs its hook and priority together; type and policy mean nothing without them.
    if (hook != op.priority.has_value()) TypeError(env, fn, path, "must give hook and priority together (a base chain) or neither");
    if (!hook && (op.type || op.policy)) TypeError(env, fn, path, "type and policy need a hook (only base chains have them)");
  }
  if (op.kind == NftOpKind::kAddRule) {
    Napi::Value exprs = o.Get("exprs");
    if (!exprs.IsArray()) TypeError(env, fn, path + ".exprs", "must be an array");
    Napi::Array list = exprs.As<Napi::Array>();
    const uint32_t n = list.Length();
    op.exprs.reserve(n);
    for (uint32_t i = 0; i < n; ++i) op.exprs.push_back(ExprOf(list.Get(i), fn, path + ".exprs[" + std::to_string(i) + "]"));
    if (!Absent(o.Get("position"))) op.position = U64Of(o.Get("position"), fn, path + ".position");
  }
  if (op.kind == NftOpKind::kDeleteRule) op.handle = U64Of(o.Get("handle"), fn, path + ".handle");
  return op;
}

// ---------------------------------------------------------------------------------------------
// Results.

Napi::Value BytesOrNull(Napi::Env env, const std::optional<NftBytes>& bytes) {
  return bytes ? Napi::Value(ToBuffer(env, *bytes)) : env.Null();
}

Napi::Object ExprToJs(Napi::Env env, const NftExpr& expr) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", expr.name);
  for (const NftAttr& a : expr.attrs) {
    Napi::Value v;
    if (a.raw) {
      v = ToBuffer(env, a.bytes);
    } else {
      switch (a.spec->type) {
        case NftAttrType::kU8:
        case NftAttrType::kU16:
        case NftAttrType::kU32:
        case NftAttrType::kS32: v = Napi::Number::New(env, static_cast<double>(a.number)); break;
        case NftAttrType::kU64: v = Napi::BigInt::New(env, a.u64); break;
        case NftAttrType::kString: v = Napi::String::New(env, a.text); break;
        case NftAttrType::kData:
        case NftAttrType::kXtInfo: v = ToBuffer(env, a.bytes); break;
      }
    }
    o.Set(a.spec->key, v);
  }
  return o;
}

class NftDumpJob : public Job {
 public:
  NftDumpJob(Napi::Env env, std::string netns, NftDumpRequest request)
      : Job(env, "nft.dump", std::move(netns)), request_(std::move(request)) {}

 protected:
  void Execute() override { dump_ = DumpNftables(request_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("generation", Napi::Number::New(env, dump_.generation));
    out.Set("netnsCookie", Napi::BigInt::New(env, dump_.netns_cookie));
    Napi::Array tables = Napi::Array::New(env, dump_.tables.size());
    for (size_t i = 0; i < dump_.tables.size(); ++i) {
      const NftTable& t = dump_.tables[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("family", t.family);
      o.Set("name", t.name);
      o.Set("handle", Napi::BigInt::New(env, t.handle));
      o.Set("flags", t.flags);
      o.Set("userdata", BytesOrNull(env, t.userdata));
      tables.Set(i, o);
    }
    out.Set("tables", tables);
    Napi::Array chains = Napi::Array::New(env, dump_.chains.size());
    for (size_t i = 0; i < dump_.chains.size(); ++i) {
      const NftChain& c = dump_.chains[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("family", c.family);
      o.Set("table", c.table);
      o.Set("name", c.name);
      o.Set("handle", Napi::BigInt::New(env, c.handle));
      o.Set("hook", c.hook ? Napi::Value(Napi::Number::New(env, *c.hook)) : env.Null());
      o.Set("priority", c.priority ? Napi::Value(Napi::Number::New(env, *c.priority)) : env.Null());
      o.Set("type", c.type ? Napi::Value(Napi::String::New(env, *c.type)) : env.Null());
      o.Set("policy", c.policy ? Napi::Value(Napi::Number::New(env, *c.policy)) : env.Null());
      o.Set("userdata", BytesOrNull(env, c.userdata));
      chains.Set(i, o);
    }
    out.Set("chains", chains);
    Napi::Array rules = Napi::Array::New(env, dump_.rules.size());
    for (size_t i = 0; i < dump_.rules.size(); ++i) {
      // The array keeps each rule; the handles made building it need not outlive the iteration.
      Napi::HandleScope scope(env);
      const NftRule& r = dump_.rules[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("family", r.family);
      o.Set("table", r.table);
      o.Set("chain", r.chain);
      o.Set("handle", Napi::BigInt::New(env, r.handle));
      o.Set("userdata", BytesOrNull(env, r.userdata));
      Napi::Array exprs = Napi::Array::New(env, r.exprs.size());
      for (size_t e = 0; e < r.exprs.size(); ++e) exprs.Set(e, ExprToJs(env, r.exprs[e]));
      o.Set("exprs", exprs);
      rules.Set(i, o);
    }
    out.Set("rules", rules);
    if (request_.counter_sums) {
      Napi::Array sums = Napi::Array::New(env, dump_.sums.size());
      for (size_t i = 0; i < dump_.sums.size(); ++i) {
        const NftChainCounterSum& s = dump_.sums[i];
        Napi::Object o = Napi::Object::New(env);
        o.Set("family", s.family);
        o.Set("table", s.table);
        o.Set("chain", s.chain);
        o.Set("packets", Napi::BigInt::New(env, s.packets));
        o.Set("bytes", Napi::BigInt::New(env, s.bytes));
        o.Set("rules", s.rules);
        sums.Set(i, o);
      }
      out.Set("sums", sums);
    }
    return out;
  }

 private:
  NftDumpRequest request_;
  NftDump dump_;
};

// nftDump({family?, table?, rules?, counterSums?}, netns?): Promise<RawNftDump>
Napi::Value NftDumpBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "nftDump";
  Napi::Object o = ObjectOf(info.Length() > 0 ? info[0] : env.Undefined(), fn, "request");
  NftDumpRequest request;
  if (!Absent(o.Get("family"))) request.family = FamilyOf(o.Get("family"), fn, "request.family");
  if (!Absent(o.Get("table"))) request.table = NameOf(o.Get("table"), fn, "request.table");
  Napi::Value rules = o.Get("rules");
  if (!rules.IsUndefined()) {
    if (!rules.IsBoolean()) TypeError(env, fn, "request.rules", "must be a boolean");
    request.rules = rules.As<Napi::Boolean>().Value();
  }
  Napi::Value sums = o.Get("counterSums");
  if (!Absent(sums)) {
    Napi::Object spec = ObjectOf(sums, fn, "request.counterSums");
    NftCounterSumsRequest counter_sums;
    Napi::Value exprs = spec.Get("actingExprs");
    if (!exprs.IsArray()) TypeError(env, fn, "request.counterSums.actingExprs", "must be an array");
    Napi::Array names = exprs.As<Napi::Array>();
    for (uint32_t i = 0; i < names.Length(); ++i) {
      counter_sums.acting_exprs.push_back(StringOf(names.Get(i), fn, "request.counterSums.actingExprs[" + std::to_string(i) + "]"));
    }
    Napi::Value verdicts = spec.Get("actingVerdicts");
    if (!verdicts.IsArray()) TypeError(env, fn, "request.counterSums.actingVerdicts", "must be an array");
    Napi::Array codes = verdicts.As<Napi::Array>();
    for (uint32_t i = 0; i < codes.Length(); ++i) {
      counter_sums.acting_verdicts.push_back(static_cast<int32_t>(IntegerOf(codes.Get(i), fn, "request.counterSums.actingVerdicts[" + std::to_string(i) + "]",
                                                                            std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max())));
    }
    request.counter_sums = std::move(counter_sums);
  }
  std::string netns = NetnsArgument(info, 1, "nftDump");
  return PoolOf(env).Submit(env, std::make_unique<NftDumpJob>(env, netns, std::move(request)));
}

class NftGenerationJob : public Job {
 public:
  NftGenerationJob(Napi::Env env, std::string netns) : Job(env, "nft.generation", std::move(netns)) {}

 protected:
  void Execute() override { generation_ = ReadNftGeneration(); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("generation", Napi::Number::New(env, generation_.generation));
    out.Set("netnsCookie", Napi::BigInt::New(env, generation_.netns_cookie));
    return out;
  }

 private:
  NftGeneration generation_;
};

// nftGeneration(netns?): Promise<{generation, netnsCookie}>
Napi::Value NftGenerationBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = NetnsArgument(info, 0, "nftGeneration");
  return PoolOf(env).Submit(env, std::make_unique<NftGenerationJob>(env, netns));
}

class NftCommitJob : public Job {
 public:
  NftCommitJob(Napi::Env env, std::string netns, NftCommitRequest request)
      : Job(env, "nft.commit", std::move(netns)), request_(std::move(request)) {}

 protected:
  void Execute() override { result_ = CommitNftables(request_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array handles = Napi::Array::New(env, result_.handles.size());
    for (size_t i = 0; i < result_.handles.size(); ++i) handles.Set(i, Napi::BigInt::New(env, result_.handles[i]));
    out.Set("handles", handles);
    out.Set("netnsCookie", Napi::BigInt::New(env, result_.netns_cookie));
    return out;
  }

 private:
  NftCommitRequest request_;
  NftCommitResult result_;
};

// nftCommit({generation, ops, echo?}, netns?): Promise<{handles, netnsCookie}>
Napi::Value NftCommitBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "nftCommit";
  Napi::Object o = ObjectOf(info.Length() > 0 ? info[0] : env.Undefined(), fn, "request");
  NftCommitRequest request;
  if (!Absent(o.Get("generation"))) {
    request.generation = static_cast<uint32_t>(IntegerOf(o.Get("generation"), fn, "request.generation", 0, std::numeric_limits<uint32_t>::max()));
  }
  Napi::Value echo = o.Get("echo");
  if (!Absent(echo)) {
    if (!echo.IsBoolean()) TypeError(env, fn, "request.echo", "must be a boolean");
    request.echo = echo.As<Napi::Boolean>().Value();
  }
  Napi::Value ops = o.Get("ops");
  if (!ops.IsArray()) TypeError(env, fn, "request.ops", "must be an array");
  Napi::Array list = ops.As<Napi::Array>();
  const uint32_t n = list.Length();
  request.ops.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    // One scope per op: every handle of a 40,000-op batch alive at once makes each scavenge walk
    // them all, which made converting such a batch take seconds.
    Napi::HandleScope scope(env);
    request.ops.push_back(OpOf(list.Get(i), fn, "request.ops[" + std::to_string(i) + "]"));
  }
  std::string netns = NetnsArgument(info, 1, "nftCommit");
  return PoolOf(env).Submit(env, std::make_unique<NftCommitJob>(env, netns, std::move(request)));
}

}  // namespace

void RegisterNftables(Napi::Env env, Napi::Object exports) {
  exports.Set("nftDump", Napi::Function::New(env, NftDumpBinding, "nftDump"));
  exports.Set("nftCommit", Napi::Function::New(env, NftCommitBinding, "nftCommit"));
  exports.Set("nftGeneration", Napi::Function::New(env, NftGenerationBinding, "nftGeneration"));
}

}  // namespace nodenet
