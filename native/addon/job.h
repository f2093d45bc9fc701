// One kernel operation, carried from the JS thread to a pool thread and back (the "baton").
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "../kernel/error.h"

namespace nodenet {

class Job {
 public:
  // op names the entry point ("links.list"); netns is a path, or empty for the thread's own.
  Job(Napi::Env env, std::string op, std::string netns);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  virtual ~Job() = default;

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Pool thread: enters the netns (if any), runs Execute, keeps any error. Never throws.
  void Run();
  // JS thread: resolves with Result() or rejects with the error.
  void Settle(Napi::Env env);

 protected:
  // Pool thread. Throws KernelError.
  virtual void Execute() = 0;
  // JS thread, only after Execute succeeded.
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  Napi::Promise::Deferred deferred_;
  std::string op_;
  std::string netns_;
  std::unique_ptr<KernelError> error_;
};

}  // namespace nodenet
