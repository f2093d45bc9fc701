#include "file_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"

namespace nodenet {

FileLock::FileLock(const std::string& path) {
  fd_.Reset(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
  if (!fd_.valid()) {
    int err = errno;
    throw KernelError(err, "lock " + path, "cannot open the lock file");
  }
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[32] = {};
    ssize_t n = ::pread(fd_.get(), buf, sizeof buf - 1, 0);
    if (n > 0) holder = std::string(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw KernelError(err, "lock " + path,
                      err == EWOULDBLOCK ? "another process holds it" + (holder.empty() ? std::string() : " (pid " + holder + ")")
                                         : "cannot take the lock");
  }
  // Who holds it, for the next one that finds it taken.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_.get(), 0) == 0) {
    (void)!::pwrite(fd_.get(), pid.data(), pid.size(), 0);
  }
}

}  // namespace nodenet
