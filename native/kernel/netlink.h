// A libnl route socket that keeps what libnl throws away: the kernel's exact errno (libnl folds it
// into its own coarser NLE_* codes) and the extended-ack message (libnl 3.7 neither requests nor
// parses it).
#pragma once

#include <netlink/netlink.h>

#include <memory>
#include <string>

namespace nodenet {

class NlRouteSocket {
 public:
  // Opens and connects NETLINK_ROUTE in the calling thread's current network namespace.
  // object names what the socket is for, for error messages. Throws KernelError.
  explicit NlRouteSocket(std::string object);
  NlRouteSocket(const NlRouteSocket&) = delete;
  NlRouteSocket& operator=(const NlRouteSocket&) = delete;
  ~NlRouteSocket();

  nl_sock* get() const { return sock_; }

  // Throws a KernelError for a negative libnl return code, preferring the kernel's own errno and
  // extended ack captured from the last error message. object overrides the socket's object.
  [[noreturn]] void Fail(int nl_code, const std::string& object = {}) const;

  // Clears what the previous request's error captured.
  void ResetError();

  struct KernelAck {
    int err = 0;          // positive errno from the kernel's NLMSG_ERROR, 0 if none
    std::string extack;   // NLMSGERR_ATTR_MSG
  };

 private:
  nl_sock* sock_ = nullptr;
  std::string object_;
  KernelAck last_;
};

// Positive errno for a libnl NLE_* code (as a positive or negative number).
int NlErrorToErrno(int nl_code);

}  // namespace nodenet
