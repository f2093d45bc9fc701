// sysctls of a namespace, and the agent's one-writer-per-node lock.
#include "../kernel/procfs.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

class ReadSysctlJob : public Job {
 public:
  ReadSysctlJob(Napi::Env env, std::string netns, std::string name) : Job(env, "sysctl.read", std::move(netns)), name_(std::move(name)) {}

 protected:
  void Execute() override { value_ = ReadSysctl(name_); }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, value_); }

 private:
  std::string name_;
  std::string value_;
};

class WriteSysctlJob : public Job {
 public:
  WriteSysctlJob(Napi::Env env, std::string netns, std::string name, std::string value)
      : Job(env, "sysctl.write", std::move(netns)), name_(std::move(name)), value_(std::move(value)) {}

 protected:
  void Execute() override { WriteSysctl(name_, value_); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string name_;
  std::string value_;
};

class AcquireLockJob : public Job {
 public:
  AcquireLockJob(Napi::Env env, std::string path) : Job(env, "lock.acquire", ""), path_(std::move(path)) {}

 protected:
  void Execute() override { lock_ = std::make_unique<FileLock>(path_); }
  Napi::Value Result(Napi::Env env) override {
    AddonState& state = StateOf(env);
    uint32_t id = state.next_lock_id++;
    state.locks[id] = std::move(lock_);
    return Napi::Number::New(env, id);
  }

 private:
  std::string path_;
  std::unique_ptr<FileLock> lock_;
};

// readSysctl(name, netns?): Promise<string>
Napi::Value ReadSysctlBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArgument(info, 0, "readSysctl", "name");
  std::string netns = NetnsArgument(info, 1, "readSysctl");
  return PoolOf(env).Submit(env, std::make_unique<ReadSysctlJob>(env, netns, name));
}

// writeSysctl(name, value, netns?): Promise<void>
Napi::Value WriteSysctlBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = StringArgument(info, 0, "writeSysctl", "name");
  std::string value = StringArgument(info, 1, "writeSysctl", "value");
  std::string netns = NetnsArgument(info, 2, "writeSysctl");
  return PoolOf(env).Submit(env, std::make_unique<WriteSysctlJob>(env, netns, name, value));
}

// acquireLock(path): Promise<number>, an id for releaseLock; the lock lasts until then or exit.
Napi::Value AcquireLockBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArgument(info, 0, "acquireLock", "path");
  return PoolOf(env).Submit(env, std::make_unique<AcquireLockJob>(env, path));
}

// releaseLock(id): boolean, whether a lock with that id was held.
Napi::Value ReleaseLockBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "releaseLock: id must be a number");
  return Napi::Boolean::New(env, StateOf(env).locks.erase(info[0].As<Napi::Number>().Uint32Value()) > 0);
}

}  // namespace

void RegisterSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("readSysctl", Napi::Function::New(env, ReadSysctlBinding, "readSysctl"));
  exports.Set("writeSysctl", Napi::Function::New(env, WriteSysctlBinding, "writeSysctl"));
  exports.Set("acquireLock", Napi::Function::New(env, AcquireLockBinding, "acquireLock"));
  exports.Set("releaseLock", Napi::Function::New(env, ReleaseLockBinding, "releaseLock"));
}

}  // namespace nodenet
