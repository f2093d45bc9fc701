#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "error.h"
#include "fd.h"

namespace nodenet {

namespace {

std::string SysctlPath(const std::string& name) {
  bool valid = name.compare(0, 4, "net.") == 0 && name.find("..") == std::string::npos &&
               std::all_of(name.begin(), name.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; });
  if (!valid) throw KernelError(EINVAL, "sysctl " + name, "only net.* sysctls (the per-namespace ones) can be read or written");
  std::string path = "/proc/sys/" + name;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  return path;
}

}  // namespace

std::string ReadSysctl(const std::string& name) {
  const std::string path = SysctlPath(name);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    throw KernelError(err, "sysctl " + name, err == ENOENT ? "this kernel has no such setting (module not loaded?)" : "cannot read " + path);
  }
  std::string value;
  char buf[256];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      throw KernelError(err, "sysctl " + name, "cannot read " + path);
    }
    value.append(buf, static_cast<size_t>(n));
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

void WriteSysctl(const std::string& name, const std::string& value) {
  const std::string path = SysctlPath(name);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    throw KernelError(err, "sysctl " + name, err == ENOENT ? "this kernel has no such setting (module not loaded?)" : "cannot open " + path);
  }
  std::string line = value + "\n";
  if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    int err = errno;
    throw KernelError(err, "sysctl " + name, "cannot set it to " + value);
  }
}

}  // namespace nodenet
