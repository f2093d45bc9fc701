// A throwaway network namespace for C++ tests: a helper thread unshares into a new namespace and
// parks there; its /proc path names the namespace until the helper exits, after which the kernel
// frees it. Nothing on the host is touched.
#pragma once

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace nodenet::testing {

class ScratchNetns {
 public:
  ScratchNetns() {
    thread_ = std::thread([this] {
      int rc = unshare(CLONE_NEWNET);
      std::unique_lock<std::mutex> lock(mu_);
      ok_ = rc == 0;
      tid_ = static_cast<pid_t>(syscall(SYS_gettid));
      ready_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return done_; });
    });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return ready_; });
  }
  ~ScratchNetns() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool ok() const { return ok_; }
  std::string path() const { return "/proc/" + std::to_string(getpid()) + "/task/" + std::to_string(tid_) + "/ns/net"; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false, done_ = false, ok_ = false;
  pid_t tid_ = 0;
  std::thread thread_;
};

}  // namespace nodenet::testing
