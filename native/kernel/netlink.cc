#include "netlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <sys/socket.h>

#include <cstring>

#include "error.h"
#include "extack.h"

namespace nodenet {

namespace {

int CaptureKernelError(sockaddr_nl*, nlmsgerr* nlerr, void* arg) {
  auto* ack = static_cast<NlSocket::KernelAck*>(arg);
  ack->err = -nlerr->error;
  // nlerr points just past the nlmsghdr of the NLMSG_ERROR message.
  ack->extack = NetlinkExtackMessage(reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(nlerr) - NLMSG_HDRLEN));
  return NL_STOP;  // libnl then returns its own code for the error; Fail() uses what we kept
}

}  // namespace

void NlMsgFree::operator()(nl_msg* msg) const { nlmsg_free(msg); }

NlRouteSocket::NlRouteSocket(std::string object) : NlSocket(NETLINK_ROUTE, std::move(object)) {}

NlSocket::NlSocket(int protocol, std::string object) : object_(std::move(object)) {
  sock_ = nl_socket_alloc();
  if (sock_ == nullptr) throw KernelError(ENOMEM, object_, "cannot allocate a netlink socket");
  int rc = nl_connect(sock_, protocol);
  if (rc < 0) {
    nl_socket_free(sock_);
    sock_ = nullptr;
    throw KernelError(NlErrorToErrno(rc), object_, std::string("cannot open a netlink socket: ") + nl_geterror(rc));
  }
  int one = 1;
  // Best effort: kernels before 4.12 lack extended acks and CAP_ACK; errors are still reported.
  setsockopt(nl_socket_get_fd(sock_), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(nl_socket_get_fd(sock_), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  nl_socket_modify_err_cb(sock_, NL_CB_CUSTOM, CaptureKernelError, &last_);
}

NlSocket::~NlSocket() {
  if (sock_ != nullptr) nl_socket_free(sock_);
}

void NlSocket::ResetError() { last_ = KernelAck{}; }

void NlSocket::SendAndWait(nl_msg* msg) {
  ResetError();
  int rc = nl_send_auto(sock_, msg);
  if (rc < 0) Fail(rc);
  rc = nl_wait_for_ack(sock_);
  if (rc < 0) Fail(rc);
}

void NlSocket::Dump(int type, const void* header, size_t size, nl_recvmsg_msg_cb_t on_reply, void* arg) {
  ResetError();
  // libnl only copies the header into the message; its prototype just lacks the const.
  int rc = nl_send_simple(sock_, type, NLM_F_DUMP, const_cast<void*>(header), size);
  if (rc < 0) Fail(rc);
  nl_socket_modify_cb(sock_, NL_CB_VALID, NL_CB_CUSTOM, on_reply, arg);
  rc = nl_recvmsgs_default(sock_);
  if (rc < 0) Fail(rc);
}

void NlSocket::Fail(int nl_code, const std::string& object) const {
  const std::string& what = object.empty() ? object_ : object;
  if (last_.err != 0) throw KernelError(last_.err, what, {}, last_.extack);
  throw KernelError(NlErrorToErrno(nl_code), what, nl_geterror(nl_code));
}

int NlErrorToErrno(int nl_code) {
  switch (nl_code < 0 ? -nl_code : nl_code) {
    case NLE_INTR: return EINTR;
    case NLE_BAD_SOCK: return EBADF;
    case NLE_AGAIN: return EAGAIN;
    case NLE_NOMEM: return ENOMEM;
    case NLE_EXIST: return EEXIST;
    case NLE_INVAL: return EINVAL;
    case NLE_RANGE: return ERANGE;
    case NLE_MSGSIZE: return EMSGSIZE;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
    case NLE_OBJ_NOTFOUND: return ENOENT;
    case NLE_NOATTR: return ENOENT;
    case NLE_MISSING_ATTR: return EINVAL;
    case NLE_AF_MISMATCH: return EAFNOSUPPORT;
    case NLE_SEQ_MISMATCH: return EPROTO;
    case NLE_MSG_OVERFLOW: return EOVERFLOW;
    case NLE_MSG_TRUNC: return EMSGSIZE;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_SRCRT_NOSUPPORT: return EOPNOTSUPP;
    case NLE_MSG_TOOSHORT: return EPROTO;
    case NLE_MSGTYPE_NOSUPPORT: return EOPNOTSUPP;
    case NLE_OBJ_MISMATCH: return EINVAL;
    case NLE_NOCACHE: return ENOENT;
    case NLE_BUSY: return EBUSY;
    case NLE_PROTO_MISMATCH: return EPROTONOSUPPORT;
    case NLE_NOACCESS: return EACCES;
    case NLE_PERM: return EPERM;
    case NLE_PKTLOC_FILE: return ENOENT;
    case NLE_PARSE_ERR: return EINVAL;
    case NLE_NODEV: return ENODEV;
    case NLE_IMMUTABLE: return EPERM;
    case NLE_DUMP_INTR: return EINTR;
    case NLE_ATTRSIZE: return ERANGE;
    default: return EIO;
  }
}

}  // namespace nodenet
