// Pointer queries on the shim's allocations (cudaPointerGetAttributes,
// cuPointerGetAttribute(s), cuMemGetAddressRange), for the overrides. The
// driver answers first, for the host mapping; with EGM_POINTER_ATTRIBUTES=
// requested (the default) the shim then answers what the program allocated.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

namespace egm {

// cudaPointerGetAttributes, after the real call returned `real_result`.
cudaError_t runtime_pointer_attributes(cudaPointerAttributes* attributes, const void* pointer,
                                       cudaError_t real_result);

// cuPointerGetAttribute, after the driver's call on the same arguments
// returned `real_result` (a result, not a callback: no allocation per call).
CUresult pointer_attribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer,
                           CUresult real_result);

// cuPointerGetAttributes, after the driver's call returned `real_result`.
CUresult pointer_attributes(unsigned count, CUpointer_attribute* attributes, void** data,
                            CUdeviceptr pointer, CUresult real_result);

// cuMemGetAddressRange_v2: the allocation's own base and requested size;
// nullopt for memory that is not the shim's (or physical answers).
std::optional<CUresult> address_range(CUdeviceptr* base, size_t* size, CUdeviceptr pointer);

}  // namespace egm
