// Which library a call came from, for the rules that depend on the caller.
#pragma once

namespace egm {

// True when `return_address` lies in a communication library (NCCL, RCCL,
// NVSHMEM: a file whose name starts with libnccl, librccl or libnvshmem).
// Their own VMM buffers stay on the device: they are exported to peer GPUs,
// bound to multicast objects and read over NVLink, which host memory would
// turn into link traffic or refuse. Takes the loader's lock (dladdr): for
// the redirect path only. A library that reaches cuMemCreate by a tail call
// shows its own caller instead (NCCL checks every result, so it does not).
bool called_from_communication_library(const void* return_address);

}  // namespace egm
