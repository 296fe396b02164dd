// The EGM sequence: host-NUMA physical memory mapped into the GPU's virtual
// address space, and its exact reverse. Each failure undoes what was done.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>

#include "shim/core/driver_api.h"

namespace egm {

struct EgmRequest {
  size_t size = 0;            // bytes asked for
  int node = 0;               // host NUMA node for the physical memory
  int device = 0;             // the GPU that gets read-write access
  bool host_access = true;    // the CPU may load/store through the address
  uint64_t peer_devices = 0;  // bit d: device d gets read-write access too
};

struct HostMapping {
  CUdeviceptr address = 0;
  size_t mapped_size = 0;  // the request rounded up to the granularity
  CUmemGenericAllocationHandle handle = 0;
  bool shareable = false;  // exportable as a POSIX fd (cudaIpcGetMemHandle)
};

struct EgmFailure {
  const char* step;  // the driver call that failed, e.g. "cuMemCreate"
  CUresult error;
};

class VmmSequence {
 public:
  explicit VmmSequence(const DriverApi& driver) : driver_(driver) {}

  // The size a request on `node` is rounded up to.
  std::variant<size_t, EgmFailure> granularity(int node, bool recommended) const;

  // `mapped_size` must be a multiple of `granularity`.
  std::variant<HostMapping, EgmFailure> map(const EgmRequest& request, size_t mapped_size,
                                           size_t granularity) const;

  // Gives `device` read-write access to the whole mapping (peer access).
  std::optional<EgmFailure> grant(const HostMapping& mapping, int device) const;

  // Unmap, release, free the address range. All three are attempted; the
  // first failure is returned.
  std::optional<EgmFailure> unmap(const HostMapping& mapping) const;

 private:
  const DriverApi& driver_;
};

// 0 when the result would not fit in size_t.
size_t round_up(size_t size, size_t granularity);

}  // namespace egm
