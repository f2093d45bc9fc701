// qdiscs.* entry points.
#include "../kernel/qdiscs.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

class ListQdiscsJob : public Job {
 public:
  ListQdiscsJob(Napi::Env env, std::string netns, std::string device)
      : Job(env, "qdiscs.list", std::move(netns)), device_(std::move(device)) {}

 protected:
  void Execute() override { qdiscs_ = ListQdiscs(device_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, qdiscs_.size());
    for (size_t i = 0; i < qdiscs_.size(); ++i) {
      const QdiscInfo& q = qdiscs_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("ifindex", q.ifindex);
      o.Set("device", q.device);
      o.Set("handle", q.handle);
      o.Set("parent", q.parent);
      o.Set("kind", q.kind);
      o.Set("options", ToBuffer(env, q.options));
      o.Set("xstats", ToBuffer(env, q.xstats));
      if (q.has_stats) {
        Napi::Object s = Napi::Object::New(env);
        s.Set("bytes", Napi::BigInt::New(env, q.bytes));
        s.Set("packets", Napi::BigInt::New(env, q.packets));
        s.Set("qlen", q.qlen);
        s.Set("backlog", q.backlog);
        s.Set("drops", q.drops);
        s.Set("requeues", q.requeues);
        s.Set("overlimits", q.overlimits);
        o.Set("stats", s);
      } else {
        o.Set("stats", env.Null());
      }
      out.Set(i, o);
    }
    return out;
  }

 private:
  std::string device_;
  std::vector<QdiscInfo> qdiscs_;
};

uint32_t Uint32Property(Napi::Object o, const char* key, const char* fn) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(fn) + ": " + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d))) {
    throw Napi::RangeError::New(o.Env(), std::string(fn) + ": " + key + " must be a 32-bit unsigned integer");
  }
  return static_cast<uint32_t>(d);
}

// listQdiscs(device?: string, netns?: string): Promise<RawQdisc[]>
Napi::Value ListQdiscsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string device = OptionalStringArgument(info, 0, "listQdiscs", "device");
  std::string netns = NetnsArgument(info, 1, "listQdiscs");
  return PoolOf(env).Submit(env, std::make_unique<ListQdiscsJob>(env, netns, device));
}

// changeQdisc({op, device, parent, handle, kind, options}, netns?: string): Promise<void>
Napi::Value ChangeQdiscBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "changeQdisc: request must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  QdiscRequest request;
  std::string op = o.Get("op").IsString() ? o.Get("op").As<Napi::String>().Utf8Value() : "";
  if (op == "add") request.op = QdiscOp::kAdd;
  else if (op == "replace") request.op = QdiscOp::kReplace;
  else if (op == "change") request.op = QdiscOp::kChange;
  else if (op == "delete") request.op = QdiscOp::kDelete;
  else throw Napi::TypeError::New(env, "changeQdisc: op must be add, replace, change or delete");
  if (!o.Get("device").IsString()) throw Napi::TypeError::New(env, "changeQdisc: device must be a string");
  request.device = o.Get("device").As<Napi::String>().Utf8Value();
  request.parent = Uint32Property(o, "parent", "changeQdisc");
  request.handle = Uint32Property(o, "handle", "changeQdisc");
  if (o.Get("kind").IsString()) request.kind = o.Get("kind").As<Napi::String>().Utf8Value();
  Napi::Value options = o.Get("options");
  if (options.IsBuffer()) {
    auto buf = options.As<Napi::Buffer<uint8_t>>();
    request.options.assign(buf.Data(), buf.Data() + buf.Length());
  } else if (!options.IsUndefined() && !options.IsNull()) {
    throw Napi::TypeError::New(env, "changeQdisc: options must be a Buffer");
  }
  std::string netns = NetnsArgument(info, 1, "changeQdisc");
  return PoolOf(env).Submit(env, std::make_unique<RequestJob<QdiscRequest>>(env, "qdiscs.change", netns, ChangeQdisc, std::move(request)));
}

}  // namespace

void RegisterQdiscs(Napi::Env env, Napi::Object exports) {
  exports.Set("listQdiscs", Napi::Function::New(env, ListQdiscsBinding, "listQdiscs"));
  exports.Set("changeQdisc", Napi::Function::New(env, ChangeQdiscBinding, "changeQdisc"));
}

}  // namespace nodenet
