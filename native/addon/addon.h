// Per-environment state of the addon (one per main thread or worker_threads Worker).
#pragma once

#include <napi.h>

#include "worker_pool.h"

namespace nodenet {

struct AddonState {
  explicit AddonState(Napi::Env env) : pool(env, ConfiguredPoolSize()) {}
  WorkerPool pool;
};

inline WorkerPool& PoolOf(Napi::Env env) { return env.GetInstanceData<AddonState>()->pool; }

void RegisterLinks(Napi::Env env, Napi::Object exports);
void RegisterNetfilter(Napi::Env env, Napi::Object exports);
void RegisterQdiscs(Napi::Env env, Napi::Object exports);
void RegisterRuntime(Napi::Env env, Napi::Object exports);
#ifdef NODENET_SANITIZE
void RegisterSanitizerProbes(Napi::Env env, Napi::Object exports);
#endif

}  // namespace nodenet
