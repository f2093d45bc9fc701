#include "extack.h"

#include <cstring>

namespace nodenet {

std::string NetlinkExtackMessage(const nlmsghdr* hdr) {
  if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  if (hdr->nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) return {};
  const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(hdr));
  // The TLVs follow the echoed request: its header only when the kernel capped it (NETLINK_CAP_ACK,
  // or always for a successful ack), else the whole request.
  size_t echoed = (hdr->nlmsg_flags & NLM_F_CAPPED) ? sizeof(nlmsghdr) : err->msg.nlmsg_len;
  size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr) - sizeof(nlmsghdr) + NLMSG_ALIGN(echoed);
  const auto* base = reinterpret_cast<const char*>(hdr);
  while (offset + NLA_HDRLEN <= hdr->nlmsg_len) {
    const auto* attr = reinterpret_cast<const nlattr*>(base + offset);
    if (attr->nla_len < NLA_HDRLEN || offset + attr->nla_len > hdr->nlmsg_len) break;
    if ((attr->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && attr->nla_len > NLA_HDRLEN) {
      const char* text = base + offset + NLA_HDRLEN;
      return std::string(text, strnlen(text, attr->nla_len - NLA_HDRLEN));
    }
    offset += NLA_ALIGN(attr->nla_len);
  }
  return {};
}

}  // namespace nodenet
