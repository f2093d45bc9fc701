// conntrack.* entry points.
#include "../kernel/conntrack.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

class DeleteConntrackJob : public Job {
 public:
  DeleteConntrackJob(Napi::Env env, std::string netns, ConntrackFilter filter)
      : Job(env, "conntrack.delete", std::move(netns)), filter_(std::move(filter)) {}

 protected:
  void Execute() override { deleted_ = DeleteConntrack(filter_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(deleted_)); }

 private:
  ConntrackFilter filter_;
  size_t deleted_ = 0;
};

// deleteConntrack({family: 4|6, protocol, destination: Buffer, port}, netns?): Promise<number>
Napi::Value DeleteConntrackBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "deleteConntrack: filter must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  ConntrackFilter f;
  int family = o.Get("family").IsNumber() ? o.Get("family").As<Napi::Number>().Int32Value() : 0;
  if (family != 4 && family != 6) throw Napi::TypeError::New(env, "deleteConntrack: family must be 4 or 6");
  f.family = family == 4 ? IpFamily::kIPv4 : IpFamily::kIPv6;
  int protocol = o.Get("protocol").IsNumber() ? o.Get("protocol").As<Napi::Number>().Int32Value() : -1;
  int port = o.Get("port").IsNumber() ? o.Get("port").As<Napi::Number>().Int32Value() : -1;
  if (protocol < 0 || protocol > 255) throw Napi::RangeError::New(env, "deleteConntrack: protocol must be 0-255");
  if (port < 0 || port > 65535) throw Napi::RangeError::New(env, "deleteConntrack: port must be 0-65535");
  if (!o.Get("destination").IsBuffer()) throw Napi::TypeError::New(env, "deleteConntrack: destination must be a Buffer");
  auto dst = o.Get("destination").As<Napi::Buffer<uint8_t>>();
  f.protocol = static_cast<uint8_t>(protocol);
  f.port = static_cast<uint16_t>(port);
  f.destination.assign(dst.Data(), dst.Data() + dst.Length());
  std::string netns = NetnsArgument(info, 1, "deleteConntrack");
  return PoolOf(env).Submit(env, std::make_unique<DeleteConntrackJob>(env, netns, std::move(f)));
}

}  // namespace

void RegisterConntrack(Napi::Env env, Napi::Object exports) {
  exports.Set("deleteConntrack", Napi::Function::New(env, DeleteConntrackBinding, "deleteConntrack"));
}

}  // namespace nodenet
