// The two CUDA VMM descriptors of the EGM sequence, written once for the shim,
// egm-probe and egm-bench: pinned memory on a host NUMA node, and a
// read-write grant to one location.
#pragma once

#include <cuda.h>

namespace egm {

// `shareable`: the handle can be exported as a POSIX file descriptor (IPC).
inline CUmemAllocationProp host_numa_properties(int node, bool shareable = false) {
  CUmemAllocationProp properties = {};
  properties.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  properties.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
  properties.location.id = node;
  properties.requestedHandleTypes =
      shareable ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : CU_MEM_HANDLE_TYPE_NONE;
  return properties;
}

inline CUmemAccessDesc read_write_for(CUmemLocationType type, int id) {
  CUmemAccessDesc access = {};
  access.location.type = type;
  access.location.id = id;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return access;
}

}  // namespace egm
