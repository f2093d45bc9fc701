#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include "error.h"

namespace nodenet {

namespace {
constexpr const char* kThreadNetns = "/proc/thread-self/ns/net";
}

NetnsGuard::NetnsGuard(const std::string& path) {
  original_.Reset(::open(kThreadNetns, O_RDONLY | O_CLOEXEC));
  if (!original_.valid()) {
    int err = errno;
    throw KernelError(err, "netns " + path, "cannot open this thread's network namespace: " + ErrnoText(err));
  }
  UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.valid()) {
    int err = errno;
    throw KernelError(err, "netns " + path, "cannot open network namespace: " + ErrnoText(err));
  }
  if (::setns(target.get(), CLONE_NEWNET) != 0) {
    int err = errno;
    std::string why = err == EINVAL ? "not a network namespace"
                      : err == EPERM ? "entering a network namespace needs CAP_SYS_ADMIN"
                                     : ErrnoText(err);
    throw KernelError(err, "netns " + path, "cannot enter network namespace: " + why);
  }
}

NetnsGuard::~NetnsGuard() {
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "nodenet: cannot restore a worker thread's network namespace: %s\n",
                 ErrnoText(errno).c_str());
    std::abort();
  }
}

ino_t CurrentThreadNetnsInode() {
  struct stat st {};
  if (::stat(kThreadNetns, &st) != 0) {
    int err = errno;
    throw KernelError(err, kThreadNetns, "cannot stat this thread's network namespace: " + ErrnoText(err));
  }
  return st.st_ino;
}

}  // namespace nodenet
