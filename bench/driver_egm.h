// egm-bench's direct line to the CUDA driver (dlopen of libcuda.so.1): the raw
// EGM sequence the shim runs for each redirected request, measured without
// the runtime or the shim in between, and a probe of where a pointer lives.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <string>

#include "shim/core/entry_points.h"

namespace egm::bench {

// The lists of shim/core/entry_points.h: the EGM sequence and egm-bench's
// own calls.
struct DriverApi {
  EGM_DRIVER_EGM_SEQUENCE(EGM_DRIVER_MEMBER)
  EGM_BENCH_DRIVER_CALLS(EGM_DRIVER_MEMBER)
};

// The driver's entry points, loaded once; nullptr (and `error` set) when
// libcuda.so.1 or one of them is missing.
const DriverApi* driver_api(std::string* error);

// "CUDA_ERROR_..." for `result`.
std::string driver_error_name(CUresult result);

// Where `address` lives: "host-numa:N" or "host" for a VMM mapping of host
// memory (what the shim makes), "device-vmm" for a VMM mapping of device
// memory, "device" for anything else the driver knows (cudaMalloc's own).
std::string memory_location(const void* address);

struct RawMapping {
  CUdeviceptr address = 0;
  size_t size = 0;  // padded to the granularity
  CUmemGenericAllocationHandle handle = 0;
};

// The EGM sequence with the shim's defaults: host NUMA memory on the GPU's
// nearest node, read-write access for the GPU and for that node.
class RawEgm {
 public:
  // false (and `error` set) when the driver or the device cannot do it.
  bool init(int device_ordinal, std::string* error);
  int node() const { return node_; }
  size_t granularity() const { return granularity_; }
  size_t padded(size_t bytes) const;
  // cuMemCreate -> cuMemAddressReserve -> cuMemMap -> cuMemSetAccess.
  CUresult map(size_t bytes, RawMapping* mapping, const char** failed_step) const;
  // cuMemUnmap -> cuMemRelease -> cuMemAddressFree.
  CUresult unmap(const RawMapping& mapping) const;

 private:
  CUmemAllocationProp properties() const;
  const DriverApi* api_ = nullptr;
  int device_ = 0;
  int node_ = 0;
  size_t granularity_ = 0;
};

}  // namespace egm::bench
