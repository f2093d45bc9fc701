// fdb.* entry points. lib/kernel/fdb.ts parses MACs and checks addresses before they get here.
#include "../kernel/fdb.h"

#include <cstring>

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

class ListFdbJob : public Job {
 public:
  ListFdbJob(Napi::Env env, std::string netns, std::string device)
      : Job(env, "fdb.list", std::move(netns)), device_(std::move(device)) {}

 protected:
  void Execute() override { entries_ = ListFdb(device_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, entries_.size());
    for (size_t i = 0; i < entries_.size(); ++i) {
      const FdbEntry& e = entries_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("mac", e.mac);
      o.Set("ifindex", e.ifindex);
      o.Set("device", e.device);
      o.Set("dst", e.dst);
      o.Set("vni", e.vni ? Napi::Number::New(env, *e.vni) : env.Null());
      o.Set("port", e.port ? Napi::Number::New(env, *e.port) : env.Null());
      o.Set("vlan", e.vlan ? Napi::Number::New(env, *e.vlan) : env.Null());
      o.Set("viaIndex", e.via_index);
      o.Set("via", e.via);
      o.Set("masterIndex", e.master_index);
      o.Set("master", e.master);
      o.Set("state", e.state);
      o.Set("flags", e.flags);
      out.Set(i, o);
    }
    return out;
  }

 private:
  std::string device_;
  std::vector<FdbEntry> entries_;
};

// (device: string, mac: Buffer of 6, dst?: string) at the start of both changes.
FdbRequest ReadRequest(const Napi::CallbackInfo& info, const char* fn) {
  FdbRequest r;
  r.device = StringArgument(info, 0, fn, "device");
  if (info.Length() < 2 || !info[1].IsBuffer() || info[1].As<Napi::Buffer<uint8_t>>().Length() != sizeof r.mac) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": mac must be a Buffer of 6 bytes");
  }
  std::memcpy(r.mac, info[1].As<Napi::Buffer<uint8_t>>().Data(), sizeof r.mac);
  r.dst = OptionalStringArgument(info, 2, fn, "dst");
  return r;
}

// listFdb(device?: string, netns?: string): Promise<RawFdbEntry[]>
Napi::Value ListFdbBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string device = OptionalStringArgument(info, 0, "listFdb", "device");
  std::string netns = NetnsArgument(info, 1, "listFdb");
  return PoolOf(env).Submit(env, std::make_unique<ListFdbJob>(env, netns, device));
}

// addFdb(device: string, mac: Buffer, dst: string | undefined, append: boolean, netns?: string): Promise<void>
Napi::Value AddFdbBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdbRequest request = ReadRequest(info, "addFdb");
  if (info.Length() < 4 || !info[3].IsBoolean()) throw Napi::TypeError::New(env, "addFdb: append must be a boolean");
  request.append = info[3].As<Napi::Boolean>().Value();
  std::string netns = NetnsArgument(info, 4, "addFdb");
  return PoolOf(env).Submit(env, std::make_unique<RequestJob<FdbRequest>>(env, "fdb.add", netns, AddFdb, std::move(request)));
}

// removeFdb(device: string, mac: Buffer, dst: string | undefined, netns?: string): Promise<void>
Napi::Value RemoveFdbBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FdbRequest request = ReadRequest(info, "removeFdb");
  std::string netns = NetnsArgument(info, 3, "removeFdb");
  return PoolOf(env).Submit(env, std::make_unique<RequestJob<FdbRequest>>(env, "fdb.remove", netns, RemoveFdb, std::move(request)));
}

}  // namespace

void RegisterFdb(Napi::Env env, Napi::Object exports) {
  exports.Set("listFdb", Napi::Function::New(env, ListFdbBinding, "listFdb"));
  exports.Set("addFdb", Napi::Function::New(env, AddFdbBinding, "addFdb"));
  exports.Set("removeFdb", Napi::Function::New(env, RemoveFdbBinding, "removeFdb"));
}

}  // namespace nodenet
