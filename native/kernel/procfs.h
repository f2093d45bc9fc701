// Per-namespace kernel settings: /proc/sys/net is the view of the namespace the reading thread is
// in, so these run on a worker thread inside the target namespace like every other kernel call.
#pragma once

#include <string>

namespace nodenet {

// The value of a sysctl such as "net.netfilter.nf_conntrack_tcp_be_liberal", trimmed. Only
// net.* names (the per-namespace ones). Throws KernelError (ENOENT when the kernel lacks it).
std::string ReadSysctl(const std::string& name);

// Writes a net.* sysctl. Throws KernelError.
void WriteSysctl(const std::string& name, const std::string& value);

}  // namespace nodenet
