// An exclusive, non-blocking lock on a file (flock), for "one writer of this kind per node":
// nodenet's agent holds /run/nodenet.lock for its whole life. The lock goes with the descriptor,
// so a crashed agent never leaves it held.
#pragma once

#include <string>

#include "fd.h"

namespace nodenet {

class FileLock {
 public:
  // Takes the lock or throws KernelError (EAGAIN when another process holds it; the message
  // names that process's pid as it wrote it into the file).
  explicit FileLock(const std::string& path);
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  UniqueFd fd_;
};

}  // namespace nodenet
