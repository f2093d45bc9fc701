#include "job.h"

#include <errno.h>

#include <new>
#include <optional>

#include "../kernel/netns.h"
#include "convert.h"

namespace nodenet {

Job::Job(Napi::Env env, std::string op, std::string netns)
    : deferred_(Napi::Promise::Deferred::New(env)), op_(std::move(op)), netns_(std::move(netns)) {}

void Job::Run() {
  try {
    // The guard's destructor restores the thread before any handler below runs.
    std::optional<NetnsGuard> guard;
    if (!netns_.empty()) guard.emplace(netns_);
    Execute();
  } catch (const KernelError& e) {
    error_ = std::make_unique<KernelError>(e);
  } catch (const std::bad_alloc&) {
    error_ = std::make_unique<KernelError>(ENOMEM, "", "out of memory");
  } catch (const std::exception& e) {
    error_ = std::make_unique<KernelError>(EIO, "", std::string("internal error: ") + e.what());
  }
  if (error_) {
    error_->set_op(op_);
    error_->set_netns(netns_);
  }
}

void Job::Settle(Napi::Env env) {
  Napi::HandleScope scope(env);
  if (error_) {
    deferred_.Reject(ToJsError(env, *error_).Value());
    return;
  }
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  }
}

}  // namespace nodenet
