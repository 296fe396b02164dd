// The spill rule: in EGM_MODE=spill, whether a request is tried on the
// device or sent to host memory, and why. Pure arithmetic on the device's
// free and total memory (one cuMemGetInfo the caller already makes), so that
// it can be tested without a device.
#pragma once

#include <cstddef>
#include <optional>

namespace egm {

// The device's memory as cuMemGetInfo/cudaMemGetInfo reported it: the whole
// device (every process and the CUDA context), not this program's share.
struct DeviceMemory {
  size_t free = 0;
  size_t total = 0;  // 0 = unknown (the call failed)
};

// EGM_SPILL_MIN_SIZE=auto: total / 2048 rounded down to a power of two,
// within [8 MiB, 256 MiB] (H200 139.8 GiB -> 64 MiB, 80 GiB -> 32 MiB).
// Below it are the allocator's small blocks, workspaces and activations;
// at or above it the weight matrices and optimizer states worth spilling.
size_t auto_spill_min_size(size_t device_total);
// EGM_DEVICE_RESERVE=auto: total / 128 rounded down to a MiB, at least 1 GiB
// (H200 -> 1.09 GiB, 192 GiB -> 1.5 GiB, 80 GiB and less -> 1 GiB): the room
// left to the program's late small requests and to CUDA's own allocations.
// Every byte of it is a byte of large allocations sent to host memory
// instead (measured: 1/32 cost a third of the offload pipeline's speed).
size_t auto_device_reserve(size_t device_total);

struct SpillDecision {
  bool try_device = false;  // false: host memory at once (trigger spill-threshold)
  // device: spill-room (room above the reserve) or below-spill-size (a small
  // request allowed into the first half of the reserve); host:
  // above-spill-size, or reserve-floor (a small request that would eat into
  // the half of the reserve kept for memory the shim does not see).
  const char* reason = "";
  size_t spill_min_size = 0;  // the effective values, for the log
  size_t device_reserve = 0;
};

// nullopt settings are `auto`.
SpillDecision decide_spill(size_t request, const DeviceMemory& memory,
                           std::optional<size_t> spill_min_size,
                           std::optional<size_t> device_reserve);

}  // namespace egm
