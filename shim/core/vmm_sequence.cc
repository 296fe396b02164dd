#include "shim/core/vmm_sequence.h"

#include <vector>

#include "shim/core/vmm_descriptors.h"

namespace egm {

size_t round_up(size_t size, size_t granularity) {
  if (size > SIZE_MAX - granularity) return 0;
  return (size + granularity - 1) / granularity * granularity;
}

std::variant<size_t, EgmFailure> VmmSequence::granularity(int node, bool recommended) const {
  const CUmemAllocationProp properties = host_numa_properties(node);
  size_t granularity = 0;
  CUresult result = driver_.mem_get_allocation_granularity(
      &granularity, &properties,
      recommended ? CU_MEM_ALLOC_GRANULARITY_RECOMMENDED : CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  if (result != CUDA_SUCCESS) return EgmFailure{"cuMemGetAllocationGranularity", result};
  if (granularity == 0)
    return EgmFailure{"cuMemGetAllocationGranularity", CUDA_ERROR_INVALID_VALUE};
  return granularity;
}

std::variant<HostMapping, EgmFailure> VmmSequence::map(const EgmRequest& request,
                                                       size_t mapped_size,
                                                       size_t granularity) const {
  HostMapping mapping;
  mapping.mapped_size = mapped_size;
  // Shareable first, so that cudaIpcGetMemHandle can export the chunk; a
  // driver or node that refuses the fd handle type still gets plain memory.
  CUmemAllocationProp properties = host_numa_properties(request.node, true);
  CUresult result = driver_.mem_create(&mapping.handle, mapping.mapped_size, &properties, 0);
  mapping.shareable = result == CUDA_SUCCESS;
  if (result != CUDA_SUCCESS && result != CUDA_ERROR_OUT_OF_MEMORY) {
    properties = host_numa_properties(request.node);
    result = driver_.mem_create(&mapping.handle, mapping.mapped_size, &properties, 0);
  }
  if (result != CUDA_SUCCESS) return EgmFailure{"cuMemCreate", result};

  result = driver_.mem_address_reserve(&mapping.address, mapping.mapped_size, granularity, 0, 0);
  if (result != CUDA_SUCCESS) {
    driver_.mem_release(mapping.handle);
    return EgmFailure{"cuMemAddressReserve", result};
  }

  result = driver_.mem_map(mapping.address, mapping.mapped_size, 0, mapping.handle, 0);
  if (result != CUDA_SUCCESS) {
    driver_.mem_address_free(mapping.address, mapping.mapped_size);
    driver_.mem_release(mapping.handle);
    return EgmFailure{"cuMemMap", result};
  }

  // Access must cover the whole mapped (padded) range, not just the request.
  std::vector<CUmemAccessDesc> access = {
      read_write_for(CU_MEM_LOCATION_TYPE_DEVICE, request.device)};
  for (int peer = 0; peer < 64; ++peer) {
    if (peer != request.device && (request.peer_devices >> peer & 1)) {
      access.push_back(read_write_for(CU_MEM_LOCATION_TYPE_DEVICE, peer));
    }
  }
  if (request.host_access) {
    access.push_back(read_write_for(CU_MEM_LOCATION_TYPE_HOST_NUMA, request.node));
  }
  result =
      driver_.mem_set_access(mapping.address, mapping.mapped_size, access.data(), access.size());
  if (result != CUDA_SUCCESS) {
    unmap(mapping);
    return EgmFailure{"cuMemSetAccess", result};
  }
  return mapping;
}

std::optional<EgmFailure> VmmSequence::grant(const HostMapping& mapping, int device) const {
  CUmemAccessDesc access = read_write_for(CU_MEM_LOCATION_TYPE_DEVICE, device);
  CUresult result = driver_.mem_set_access(mapping.address, mapping.mapped_size, &access, 1);
  if (result != CUDA_SUCCESS) return EgmFailure{"cuMemSetAccess", result};
  return std::nullopt;
}

std::optional<EgmFailure> VmmSequence::unmap(const HostMapping& mapping) const {
  std::optional<EgmFailure> first_failure;
  auto note = [&first_failure](const char* step, CUresult result) {
    if (result != CUDA_SUCCESS && !first_failure) first_failure = EgmFailure{step, result};
  };
  note("cuMemUnmap", driver_.mem_unmap(mapping.address, mapping.mapped_size));
  note("cuMemRelease", driver_.mem_release(mapping.handle));
  note("cuMemAddressFree", driver_.mem_address_free(mapping.address, mapping.mapped_size));
  return first_failure;
}

}  // namespace egm
