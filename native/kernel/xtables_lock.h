// The system-wide xtables lock that iptables, iptables-restore and kube-proxy take around every
// read-modify-commit of a legacy table (flock on /run/xtables.lock, or XTABLES_LOCKFILE).
//
// libiptc replaces a whole table on commit and the kernel only notices a concurrent change when the
// entry count differs, so a writer that skips this lock can silently undo someone else's rules.
#pragma once

#include <string>

#include "fd.h"

namespace nodenet {

class XtablesLock {
 public:
  // Waits up to timeout_ms for the lock. Throws KernelError (ETIMEDOUT) naming the lock file.
  explicit XtablesLock(int timeout_ms);
  XtablesLock(const XtablesLock&) = delete;
  XtablesLock& operator=(const XtablesLock&) = delete;
  ~XtablesLock() = default;  // closing the descriptor releases the lock

  double waited_ms() const { return waited_ms_; }

  // XTABLES_LOCKFILE, or /run/xtables.lock as iptables 1.8 uses.
  static std::string Path();

 private:
  UniqueFd fd_;
  double waited_ms_ = 0;
};

}  // namespace nodenet
