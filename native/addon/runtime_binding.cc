// Facts about the addon itself: versions, and where its worker threads are.
#include <netlink/version.h>

#include "../kernel/netns.h"
#include "addon.h"
#include "convert.h"

#ifndef NODENET_VERSION
#error "NODENET_VERSION must be defined by the build (package.json's version)"
#endif
#ifndef NODENET_LIBIPTC_VERSION
#error "NODENET_LIBIPTC_VERSION must be defined by the build (pkg-config --modversion libip4tc)"
#endif
#if !defined(NODENET_LIBNFTNL_VERSION) || !defined(NODENET_LIBMNL_VERSION)
#error "NODENET_LIBNFTNL_VERSION and NODENET_LIBMNL_VERSION must be defined by the build (pkg-config --modversion)"
#endif

namespace nodenet {

namespace {

class ThreadNetnsJob : public Job {
 public:
  explicit ThreadNetnsJob(Napi::Env env) : Job(env, "runtime.threadNetns", "") {}

 protected:
  void Execute() override { inode_ = CurrentThreadNetnsInode(); }
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, static_cast<double>(inode_)); }

 private:
  ino_t inode_ = 0;
};

// versions(): the addon, N-API, and the kernel libraries it was built against and runs with.
Napi::Value VersionsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("addon", NODENET_VERSION);
  out.Set("napi", NAPI_VERSION);
  out.Set("libnl", std::to_string(nl_ver_maj) + "." + std::to_string(nl_ver_min) + "." + std::to_string(nl_ver_mic));
  out.Set("libnlBuilt", LIBNL_VERSION);
  out.Set("libiptc", NODENET_LIBIPTC_VERSION);
  // Neither library reports its version at run time: these are the versions built against.
  out.Set("libnftnl", NODENET_LIBNFTNL_VERSION);
  out.Set("libmnl", NODENET_LIBMNL_VERSION);
#ifdef NODENET_SANITIZE
  out.Set("sanitizers", "address,undefined");
#endif
  return out;
}

// workerThreads(): how many kernel threads the pool has.
Napi::Value WorkerThreadsBinding(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(PoolOf(info.Env()).size()));
}

// threadNetns(index): Promise<number>, the netns inode pool thread `index` is in between jobs.
Napi::Value ThreadNetnsBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WorkerPool& pool = PoolOf(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "threadNetns: index must be a number");
  int64_t index = info[0].As<Napi::Number>().Int64Value();
  if (index < 0 || static_cast<size_t>(index) >= pool.size()) {
    throw Napi::RangeError::New(env, "threadNetns: index out of range");
  }
  return pool.SubmitTo(env, static_cast<size_t>(index), std::make_unique<ThreadNetnsJob>(env));
}

}  // namespace

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("versions", Napi::Function::New(env, VersionsBinding, "versions"));
  exports.Set("workerThreads", Napi::Function::New(env, WorkerThreadsBinding, "workerThreads"));
  exports.Set("threadNetns", Napi::Function::New(env, ThreadNetnsBinding, "threadNetns"));
}

}  // namespace nodenet
