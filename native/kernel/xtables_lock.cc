#include "xtables_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "error.h"

namespace nodenet {

std::string XtablesLock::Path() {
  const char* env = std::getenv("XTABLES_LOCKFILE");
  return env != nullptr && *env != '\0' ? env : "/run/xtables.lock";
}

XtablesLock::XtablesLock(int timeout_ms) {
  const std::string path = Path();
  fd_.Reset(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  if (!fd_.valid()) {
    int err = errno;
    throw KernelError(err, "xtables lock " + path, "cannot open the xtables lock file: " + ErrnoText(err));
  }
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::milliseconds(timeout_ms);
  // Poll rather than block: a blocking flock could not honour the deadline. Short first sleeps keep
  // the common uncontended-but-just-released case fast.
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) == 0) break;
    int err = errno;
    if (err != EWOULDBLOCK && err != EINTR) {
      throw KernelError(err, "xtables lock " + path, "cannot take the xtables lock: " + ErrnoText(err));
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      throw KernelError(ETIMEDOUT, "xtables lock " + path,
                        "another writer held the xtables lock for more than " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::min(pause, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now)));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  waited_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace nodenet
