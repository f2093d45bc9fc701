// Compiled only into the sanitizer build: deliberate faults that prove the sanitizers are live.
// A sanitizer run that survives these is not checking anything.
#ifdef NODENET_SANITIZE

#include <climits>

#include "addon.h"

namespace nodenet {

namespace {

Napi::Value HeapOverflowProbe(const Napi::CallbackInfo& info) {
  volatile size_t len = 16;
  char* buf = new char[len];
  // Through a volatile pointer so the optimizer cannot drop a store to memory about to be freed.
  volatile char* bytes = buf;
  bytes[len] = 1;  // one byte past the end
  delete[] buf;
  return info.Env().Undefined();
}

Napi::Value SignedOverflowProbe(const Napi::CallbackInfo& info) {
  volatile int big = INT_MAX;
  int sum = big + 1;
  return Napi::Number::New(info.Env(), sum);
}

}  // namespace

void RegisterSanitizerProbes(Napi::Env env, Napi::Object exports) {
  exports.Set("probeHeapOverflow", Napi::Function::New(env, HeapOverflowProbe, "probeHeapOverflow"));
  exports.Set("probeSignedOverflow", Napi::Function::New(env, SignedOverflowProbe, "probeSignedOverflow"));
}

}  // namespace nodenet

#endif  // NODENET_SANITIZE
