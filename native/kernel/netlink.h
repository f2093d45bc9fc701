// A libnl route socket that keeps what libnl throws away: the kernel's exact errno (libnl folds it
// into its own coarser NLE_* codes) and the extended-ack message (libnl 3.7 neither requests nor
// parses it).
#pragma once

#include <netlink/netlink.h>

#include <cstddef>
#include <memory>
#include <string>

namespace nodenet {

struct NlMsgFree {
  void operator()(nl_msg* msg) const;
};
using NlMessage = std::unique_ptr<nl_msg, NlMsgFree>;

class NlSocket {
 public:
  // Opens and connects a netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER) in the
  // calling thread's current network namespace. object names what the socket is for, for error
  // messages. Throws KernelError.
  NlSocket(int protocol, std::string object);
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  ~NlSocket();

  nl_sock* get() const { return sock_; }

  // Throws a KernelError for a negative libnl return code, preferring the kernel's own errno and
  // extended ack captured from the last error message. object overrides the socket's object.
  [[noreturn]] void Fail(int nl_code, const std::string& object = {}) const;

  // Clears what the previous request's error captured.
  void ResetError();

  // Both of these clear the previous request's error first, so that Fail() never blames this
  // request for it.
  // Sends msg and waits for the kernel's ack. Throws KernelError.
  void SendAndWait(nl_msg* msg);

  // Sends an NLM_F_DUMP request of `type` whose payload is just the family header (size bytes at
  // header) and hands each reply to on_reply(msg, arg). Throws KernelError.
  void Dump(int type, const void* header, size_t size, nl_recvmsg_msg_cb_t on_reply, void* arg);

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

// The rtnetlink socket links and qdiscs use.
class NlRouteSocket : public NlSocket {
 public:
  explicit NlRouteSocket(std::string object);
};

}  // namespace nodenet
