// Inspection functions exported by the CPU-only test doubles
// (tests/doubles: fake libcuda.so.1 and fake libcudart.so.13).
//
// Tests reach them with dlsym: the fake driver is usually dlopen'ed
// RTLD_LOCAL by libegm.so, so look it up with
// dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY) rather than RTLD_DEFAULT.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- fake libcuda.so.1 ----
// Handles created by cuMemCreate and not yet cuMemRelease'd.
int fake_cuda_live_handles(void);
// Backing memory objects still alive (a released handle lives on while mapped).
int fake_cuda_live_memory_objects(void);
// Reservations made by cuMemAddressReserve and not yet cuMemAddressFree'd.
int fake_cuda_live_reservations(void);
// Ranges mapped by cuMemMap and not yet cuMemUnmap'ed.
int fake_cuda_live_mappings(void);
// Calls of a driver function so far (failed and injected-failure calls included).
long fake_cuda_call_count(const char* function);
// 1 if addr lies in a mapping whose host has been granted read-write access,
// 0 if it lies in a mapping without it, -1 if addr is not mapped.
int fake_cuda_host_access_granted(const void* addr);
// Same for the device (CU_MEM_LOCATION_TYPE_DEVICE).
int fake_cuda_device_access_granted(const void* addr);
// The mapping holding addr: 1 and its start and size, or 0 when none.
int fake_cuda_mapping_of(const void* addr, uintptr_t* base, size_t* size);

// ---- fake libcudart.so.13 ----
// Allocations made by cudaMalloc / cudaMallocManaged and not yet freed.
int fake_cudart_live_allocations(void);
// Calls of a runtime function so far.
long fake_cudart_call_count(const char* function);

#ifdef __cplusplus
}  // extern "C"
#endif
