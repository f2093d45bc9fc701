// The one error type of nodenet's kernel layer. Kernel code throws it; the addon's worker turns it
// into a JS error carrying code, errno, op, object, netns and the kernel's extended-ack text.
#pragma once

#include <exception>
#include <string>

namespace nodenet {

class KernelError : public std::exception {
 public:
  // err is a positive errno value. object names what was being worked on ("table nat (ipv4)").
  // detail replaces strerror(err) when the library has a better sentence for it.
  KernelError(int err, std::string object, std::string detail = {}, std::string extack = {});

  int err() const { return err_; }
  const std::string& object() const { return object_; }
  const std::string& detail() const { return detail_; }
  const std::string& extack() const { return extack_; }
  // op and netns are known to the caller of the kernel function, not to the code that fails.
  const std::string& op() const { return op_; }
  const std::string& netns() const { return netns_; }
  void set_op(std::string op) { op_ = std::move(op); }
  void set_netns(std::string netns) { netns_ = std::move(netns); }

  // "op object in netns X: text (ECODE): extack"
  std::string Message() const;
  const char* what() const noexcept override { return detail_.empty() ? "kernel error" : detail_.c_str(); }

 private:
  int err_;
  std::string object_;
  std::string detail_;
  std::string extack_;
  std::string op_;
  std::string netns_;
};

// "ENOENT" for 2; "E<n>" when the C library has no name for it.
std::string ErrnoName(int err);
// strerror(3) text, thread-safe.
std::string ErrnoText(int err);

}  // namespace nodenet
