#include "error.h"

#include <string.h>

namespace nodenet {

KernelError::KernelError(int err, std::string object, std::string detail, std::string extack)
    : err_(err), object_(std::move(object)), detail_(std::move(detail)), extack_(std::move(extack)) {}

std::string KernelError::Message() const {
  std::string msg = op_.empty() ? "kernel" : op_;
  if (!object_.empty()) msg += " " + object_;
  // A failure to enter the namespace already names it as the object.
  if (!netns_.empty() && object_ != "netns " + netns_) msg += " in netns " + netns_;
  msg += ": ";
  msg += detail_.empty() ? ErrnoText(err_) : detail_;
  if (err_ != 0) msg += " (" + ErrnoName(err_) + ")";
  if (!extack_.empty()) msg += ": " + extack_;
  return msg;
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r returns a pointer that may or may not be buf.
  return strerror_r(err, buf, sizeof buf);
}

}  // namespace nodenet
