#include "addon.h"

namespace nodenet {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonState(env));
  RegisterLinks(env, exports);
  RegisterLinkConfig(env, exports);
  RegisterFdb(env, exports);
  RegisterNetfilter(env, exports);
  RegisterQdiscs(env, exports);
  RegisterRuntime(env, exports);
  RegisterSystem(env, exports);
  RegisterConntrack(env, exports);
  RegisterNftables(env, exports);
  RegisterRoutes(env, exports);
  RegisterLinkMonitor(env, exports);
#ifdef NODENET_SANITIZE
  RegisterSanitizerProbes(env, exports);
#endif
  return exports;
}

}  // namespace nodenet

static Napi::Object InitNodenet(Napi::Env env, Napi::Object exports) { return nodenet::Init(env, exports); }

NODE_API_MODULE(nodenet, InitNodenet)
