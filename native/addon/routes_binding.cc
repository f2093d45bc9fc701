// routes.* entry points: route lookups and namespace ids.
#include "../kernel/routes.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

class RouteGetJob : public Job {
 public:
  RouteGetJob(Napi::Env env, std::string netns, std::string destination)
      : Job(env, "routes.get", std::move(netns)), destination_(std::move(destination)) {}

 protected:
  void Execute() override { route_ = RouteGet(destination_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("family", route_.family);
    o.Set("destination", route_.destination);
    o.Set("oif", route_.oif);
    o.Set("oifName", route_.oif_name);
    o.Set("gateway", route_.gateway);
    o.Set("gatewayFamily", route_.gateway_family);
    o.Set("prefsrc", route_.prefsrc);
    o.Set("table", route_.table);
    o.Set("type", route_.type);
    o.Set("protocol", route_.protocol);
    o.Set("scope", route_.scope);
    o.Set("flags", route_.flags);
    return o;
  }

 private:
  std::string destination_;
  RouteLookup route_;
};

class NetnsIdJob : public Job {
 public:
  NetnsIdJob(Napi::Env env, std::string netns, std::string path)
      : Job(env, "routes.netnsId", std::move(netns)), path_(std::move(path)) {}

 protected:
  void Execute() override { nsid_ = NetnsId(path_); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, nsid_); }

 private:
  std::string path_;
  int nsid_ = kNetnsIdNotAssigned;
};

// routeGet(destination: string, netns?: string): Promise<RawRoute>
Napi::Value RouteGetBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string destination = StringArgument(info, 0, "routeGet", "destination");
  std::string netns = NetnsArgument(info, 1, "routeGet");
  return PoolOf(env).Submit(env, std::make_unique<RouteGetJob>(env, netns, destination));
}

// netnsId(path: string, netns?: string): Promise<number>
Napi::Value NetnsIdBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArgument(info, 0, "netnsId", "path");
  std::string netns = NetnsArgument(info, 1, "netnsId");
  return PoolOf(env).Submit(env, std::make_unique<NetnsIdJob>(env, netns, path));
}

}  // namespace

void RegisterRoutes(Napi::Env env, Napi::Object exports) {
  exports.Set("routeGet", Napi::Function::New(env, RouteGetBinding, "routeGet"));
  exports.Set("netnsId", Napi::Function::New(env, NetnsIdBinding, "netnsId"));
}

}  // namespace nodenet
