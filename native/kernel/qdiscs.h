// Queueing disciplines through rtnetlink (RTM_{NEW,DEL,GET}QDISC).
//
// Like xtables, the addon only frames: TCA_OPTIONS goes to the kernel and comes back as bytes, and
// TypeScript encodes and decodes each kind (netem, tbf, ...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nodenet {

struct QdiscInfo {
  int ifindex = 0;
  std::string device;
  uint32_t handle = 0;
  uint32_t parent = 0;
  std::string kind;
  std::vector<uint8_t> options;  // TCA_OPTIONS payload, as the kernel sent it
  std::vector<uint8_t> xstats;   // TCA_XSTATS payload (kind-specific), may be empty
  bool has_stats = false;
  uint64_t bytes = 0;
  uint64_t packets = 0;
  uint32_t qlen = 0;
  uint32_t backlog = 0;
  uint32_t drops = 0;
  uint32_t requeues = 0;
  uint32_t overlimits = 0;
};

enum class QdiscOp {
  kAdd,      // fails with EEXIST if a qdisc is there
  kReplace,  // creates, or replaces whatever is at parent
  kChange,   // changes parameters of the qdisc with this handle in place
  kDelete,
};

struct QdiscRequest {
  QdiscOp op = QdiscOp::kAdd;
  std::string device;
  uint32_t parent = 0;  // TC_H_ROOT (0xFFFFFFFF) for the root
  uint32_t handle = 0;  // 0: let the kernel choose (add/replace only)
  std::string kind;
  std::vector<uint8_t> options;
};

// Index of a device in the calling thread's network namespace. Throws KernelError (ENODEV).
int DeviceIndex(const std::string& device);

// Every qdisc in the namespace, or only those of `device` when it is not empty. Throws KernelError.
std::vector<QdiscInfo> ListQdiscs(const std::string& device);

// One add/replace/change/delete, acknowledged by the kernel. Throws KernelError with its extack.
void ChangeQdisc(const QdiscRequest& request);

}  // namespace nodenet
