// Moves the calling thread into a network namespace for the guard's lifetime.
//
// setns(2) with CLONE_NEWNET changes only the calling thread, so kernel work runs on nodenet's own
// worker threads and every socket is opened after the switch: a netlink or raw socket stays bound to
// the namespace it was created in. If the thread cannot be put back, it would silently run every later
// job in a foreign namespace; aborting the process is the only safe answer.
#pragma once

#include <sys/types.h>

#include <string>

#include "fd.h"

namespace nodenet {

class NetnsGuard {
 public:
  // Enters the namespace at path (/var/run/netns/NAME, /proc/PID/ns/net, ...). Throws KernelError.
  explicit NetnsGuard(const std::string& path);
  NetnsGuard(const NetnsGuard&) = delete;
  NetnsGuard& operator=(const NetnsGuard&) = delete;
  ~NetnsGuard();

 private:
  UniqueFd original_;
};

// Inode of the calling thread's network namespace (what `ls -iL /proc/thread-self/ns/net` shows).
ino_t CurrentThreadNetnsInode();

}  // namespace nodenet
