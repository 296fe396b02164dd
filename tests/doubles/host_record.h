// FAKE_CUDA_HOST_RECORD=PATH: the fake driver keeps, in that file, the host
// (HOST_NUMA) bytes each process has created and not yet destroyed, and the
// peak of their sum over the live processes: what the kernel would have
// pinned. Tests of the host-wide cap (EGM_LEDGER) check that peak against
// EGM_NODE_LIMIT, independently of the shim's own ledger.
#pragma once

#include <cstdint>

namespace fake {

// Adds `delta` bytes to this process's count; no-op without the variable.
void record_host_bytes(int64_t delta);

struct HostRecord {
  int64_t peak_bytes;     // the largest sum over live processes seen
  int64_t live_bytes;     // the sum at the last update
};

// The record at `path` (zeros when it does not exist).
HostRecord read_host_record(const char* path);

}  // namespace fake
