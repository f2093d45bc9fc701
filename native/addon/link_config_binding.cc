// links.create/update/remove and the bridge/VXLAN read-back. lib/kernel/links.ts validates and
// fills defaults; this file only checks types and ranges on the way to the kernel layer.
#include "../kernel/link_config.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

// Optional properties of a request object: undefined is absent, anything of the wrong type a
// TypeError and a number out of range a RangeError, named after the entry point and key.
class Fields {
 public:
  Fields(Napi::Object object, const char* fn) : object_(object), fn_(fn) {}

  std::optional<bool> Bool(const char* key) const {
    Napi::Value v = object_.Get(key);
    if (v.IsUndefined()) return std::nullopt;
    if (!v.IsBoolean()) throw Napi::TypeError::New(object_.Env(), Name(key) + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }

  std::optional<uint32_t> Uint(const char* key, uint32_t max) const {
    Napi::Value v = object_.Get(key);
    if (v.IsUndefined()) return std::nullopt;
    if (!v.IsNumber()) throw Napi::TypeError::New(object_.Env(), Name(key) + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) {
      throw Napi::RangeError::New(object_.Env(), Name(key) + " must be a whole number from 0 to " + std::to_string(max));
    }
    return static_cast<uint32_t>(d);
  }

  std::optional<std::string> String(const char* key) const {
    Napi::Value v = object_.Get(key);
    if (v.IsUndefined()) return std::nullopt;
    if (!v.IsString()) throw Napi::TypeError::New(object_.Env(), Name(key) + " must be a string");
    return v.As<Napi::String>().Utf8Value();
  }

  std::optional<Fields> Object(const char* key) const {
    Napi::Value v = object_.Get(key);
    if (v.IsUndefined()) return std::nullopt;
    if (!v.IsObject()) throw Napi::TypeError::New(object_.Env(), Name(key) + " must be an object");
    return Fields(v.As<Napi::Object>(), fn_);
  }

  std::vector<uint8_t> Bytes(const char* key) const {
    Napi::Value v = object_.Get(key);
    if (v.IsUndefined()) return {};
    if (!v.IsBuffer()) throw Napi::TypeError::New(object_.Env(), Name(key) + " must be a Buffer");
    auto buf = v.As<Napi::Buffer<uint8_t>>();
    return std::vector<uint8_t>(buf.Data(), buf.Data() + buf.Length());
  }

 private:
  std::string Name(const char* key) const { return std::string(fn_) + ": " + key; }

  Napi::Object object_;
  const char* fn_;
};

template <typename T>
std::optional<T> Narrow(std::optional<uint32_t> v) {
  return v ? std::optional<T>(static_cast<T>(*v)) : std::nullopt;
}

LinkRequest ReadRequest(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": request must be an object");
  Fields f(info[0].As<Napi::Object>(), fn);
  LinkRequest r;
  std::optional<std::string> name = f.String("name");
  if (!name) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": name must be a string");
  r.name = *name;
  r.kind = f.String("kind").value_or("");
  if (std::optional<Fields> b = f.Object("bridge")) {
    r.bridge = BridgeConfig{b->Bool("stp"), b->Bool("nfCallIptables"), b->Bool("nfCallIp6tables")};
  }
  if (std::optional<Fields> v = f.Object("vxlan")) {
    VxlanConfig c;
    c.vni = v->Uint("vni", 0xFFFFFF);
    c.port = Narrow<uint16_t>(v->Uint("port", 0xFFFF));
    c.port_min = Narrow<uint16_t>(v->Uint("portMin", 0xFFFF));
    c.port_max = Narrow<uint16_t>(v->Uint("portMax", 0xFFFF));
    c.local = v->String("local").value_or("");
    c.group = v->String("group").value_or("");
    c.underlay = v->String("underlay").value_or("");
    c.learning = v->Bool("learning");
    c.ttl = Narrow<uint8_t>(v->Uint("ttl", 255));
    c.tos = Narrow<uint8_t>(v->Uint("tos", 255));
    c.udp_csum = v->Bool("udpCsum");
    r.vxlan = std::move(c);
  }
  r.mtu = f.Uint("mtu", 0xFFFFFFFF);
  r.alias = f.String("alias");
  r.master = f.String("master");
  r.up = f.Bool("up");
  r.address = f.Bytes("address");
  return r;
}

Napi::Value OptionalBoolean(Napi::Env env, const std::optional<bool>& v) {
  return v ? Napi::Boolean::New(env, *v) : env.Null();
}

class ListLinkDetailsJob : public Job {
 public:
  using Job::Job;

 protected:
  void Execute() override { details_ = ListLinkDetails(); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, details_.size());
    for (size_t i = 0; i < details_.size(); ++i) {
      const LinkDetails& d = details_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", d.index);
      o.Set("name", d.name);
      if (d.bridge) {
        Napi::Object b = Napi::Object::New(env);
        b.Set("stp", d.bridge->stp);
        b.Set("nfCallIptables", OptionalBoolean(env, d.bridge->nf_call_iptables));
        b.Set("nfCallIp6tables", OptionalBoolean(env, d.bridge->nf_call_ip6tables));
        o.Set("bridge", b);
      }
      if (d.vxlan) {
        const VxlanDetails& x = *d.vxlan;
        Napi::Object v = Napi::Object::New(env);
        v.Set("vni", x.vni);
        v.Set("port", x.port);
        v.Set("portMin", x.port_min);
        v.Set("portMax", x.port_max);
        v.Set("local", x.local);
        v.Set("group", x.group);
        v.Set("underlayIndex", x.underlay_index);
        v.Set("learning", x.learning);
        v.Set("ttl", x.ttl);
        v.Set("tos", x.tos);
        v.Set("udpCsum", x.udp_csum);
        o.Set("vxlan", v);
      }
      out.Set(i, o);
    }
    return out;
  }

 private:
  std::vector<LinkDetails> details_;
};

// createLink(request: RawLinkRequest, netns?: string): Promise<void>
Napi::Value CreateLinkBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkRequest request = ReadRequest(info, "createLink");
  std::string netns = NetnsArgument(info, 1, "createLink");
  return PoolOf(env).Submit(env, std::make_unique<RequestJob<LinkRequest>>(env, "links.create", netns, CreateLink, std::move(request)));
}

// updateLink(request: RawLinkRequest, netns?: string): Promise<void>
Napi::Value UpdateLinkBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkRequest request = ReadRequest(info, "updateLink");
  std::string netns = NetnsArgument(info, 1, "updateLink");
  return PoolOf(env).Submit(env, std::make_unique<RequestJob<LinkRequest>>(env, "links.update", netns, UpdateLink, std::move(request)));
}

// removeLink(name: string, netns?: string): Promise<void>
Napi::Value RemoveLinkBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArgument(info, 0, "removeLink", "name");
  std::string netns = NetnsArgument(info, 1, "removeLink");
  return PoolOf(env).Submit(env, std::make_unique<RequestJob<std::string>>(env, "links.remove", netns, RemoveLink, std::move(name)));
}

// listLinkDetails(netns?: string): Promise<RawLinkDetails[]>
Napi::Value ListLinkDetailsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = NetnsArgument(info, 0, "listLinkDetails");
  return PoolOf(env).Submit(env, std::make_unique<ListLinkDetailsJob>(env, "links.list", netns));
}

}  // namespace

void RegisterLinkConfig(Napi::Env env, Napi::Object exports) {
  exports.Set("createLink", Napi::Function::New(env, CreateLinkBinding, "createLink"));
  exports.Set("updateLink", Napi::Function::New(env, UpdateLinkBinding, "updateLink"));
  exports.Set("removeLink", Napi::Function::New(env, RemoveLinkBinding, "removeLink"));
  exports.Set("listLinkDetails", Napi::Function::New(env, ListLinkDetailsBinding, "listLinkDetails"));
}

}  // namespace nodenet
