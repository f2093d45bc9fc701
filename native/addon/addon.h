// Per-environment state of the addon (one per main thread or worker_threads Worker).
#pragma once

#include <napi.h>

#include <map>
#include <memory>

#include "../kernel/file_lock.h"
#include "worker_pool.h"

namespace nodenet {

struct AddonState {
  explicit AddonState(Napi::Env env) : pool(env, ConfiguredPoolSize()) {}
  WorkerPool pool;
  // File locks held for JS, by id (JS thread only).
  std::map<uint32_t, std::unique_ptr<FileLock>> locks;
  uint32_t next_lock_id = 1;
};

inline AddonState& StateOf(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }

inline WorkerPool& PoolOf(Napi::Env env) { return env.GetInstanceData<AddonState>()->pool; }

void RegisterLinks(Napi::Env env, Napi::Object exports);
void RegisterLinkConfig(Napi::Env env, Napi::Object exports);
void RegisterFdb(Napi::Env env, Napi::Object exports);
void RegisterNetfilter(Napi::Env env, Napi::Object exports);
void RegisterQdiscs(Napi::Env env, Napi::Object exports);
void RegisterRuntime(Napi::Env env, Napi::Object exports);
void RegisterSystem(Napi::Env env, Napi::Object exports);
void RegisterConntrack(Napi::Env env, Napi::Object exports);
void RegisterNftables(Napi::Env env, Napi::Object exports);
void RegisterRoutes(Napi::Env env, Napi::Object exports);
void RegisterLinkMonitor(Napi::Env env, Napi::Object exports);
#ifdef NODENET_SANITIZE
void RegisterSanitizerProbes(Napi::Env env, Napi::Object exports);
#endif

}  // namespace nodenet
