// One kernel operation, carried from the JS thread to a pool thread and back (the "baton").
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <utility>

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

// A kernel change that answers with nothing: one call of `call(request)` on the pool thread, and the
// promise resolves with undefined. The request is held by value because the JS thread's arguments
// are gone by the time the pool thread runs.
template <typename Request>
class RequestJob final : public Job {
 public:
  using Call = void (*)(const Request&);
  RequestJob(Napi::Env env, std::string op, std::string netns, Call call, Request request)
      : Job(env, std::move(op), std::move(netns)), call_(call), request_(std::move(request)) {}

 protected:
  void Execute() override { call_(request_); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  Call call_;
  Request request_;
};

}  // namespace nodenet
