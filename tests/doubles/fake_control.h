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
// Primary contexts retained and not yet released (egm-probe must release them).
int fake_cuda_live_primary_context_references(void);
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
// Same for one device: 1 if device `device` has been granted read-write
// access (by any cuMemSetAccess descriptor naming it), 0 if not, -1 if addr
// is not mapped.
int fake_cuda_device_access_to(const void* addr, int device);
// 1 if cuCtxEnablePeerAccess let device `accessor` use device `owner`'s memory.
int fake_cuda_ctx_peer_access_enabled(int accessor, int owner);
// The mapping holding addr: 1 and its start and size, or 0 when none.
int fake_cuda_mapping_of(const void* addr, uintptr_t* base, size_t* size);
// Allocations made by cuMemAlloc / cuMemAllocManaged / cuMemAllocPitch and not yet freed.
int fake_cuda_live_allocations(void);
// Bytes of those charged against FAKE_CUDA_DEVICE_MEMORY (managed memory is not).
size_t fake_cuda_allocated_device_bytes(void);

// ---- fake libcuda.so.1: kernels, stream order, modules (fake_launch.cc) ----
// The host-run test kernels (read_sum, fill, struct_read, alias_write,
// range_sum, read_sum4, add; fake_launch.cc says what each does) as a CUfunction, or as a
// "CUkernel" cast to CUfunction (cuKernelGetParamInfo knows its layout,
// cuFuncGetParamInfo does not), as the runtime launches them. NULL for an
// unknown name.
struct CUfunc_st* fake_cuda_function(const char* name);
struct CUfunc_st* fake_cuda_library_kernel(const char* name);
// The first word (8 bytes, fewer for a smaller parameter) of parameter
// `param` of the last launch of a kernel other than the shim's
// egm_write_back, as the kernel got it; 0 when there is no such parameter.
uintptr_t fake_cuda_last_kernel_pointer(int param);
// How many times kernel `name` ran (egm_write_back included); a captured
// launch never runs.
long fake_cuda_kernel_runs(const char* name);
// Test control: work on `stream` (a CUstream; NULL is the legacy default
// stream, CU_STREAM_PER_THREAD the calling thread's) waits from now on, as
// behind a long kernel, until fake_cuda_stream_release (or a synchronizing
// call) lets it run in order. 0 on success.
int fake_cuda_stream_block(struct CUstream_st* stream);
int fake_cuda_stream_release(struct CUstream_st* stream);
// Test control: runs the held work of a blocked `stream` in order up to (not
// including) the first item named `what` (a kernel's name, "memcpy",
// "event-record", "event-wait"), or to its end or a wait not over; the
// stream stays blocked. Lets a test stop a stream between the shim's staging
// copies and the kernel, or between the kernel and its write-back. Returns
// how many items ran.
long fake_cuda_stream_run_until(struct CUstream_st* stream, const char* what);
// Completes every stream's held work (what cuCtxSynchronize waits for),
// without counting as a driver call; the fake runtime's cudaDeviceSynchronize
// and cudaFree use it.
void fake_cuda_synchronize_all(void);
// Test control: the next launch of kernel `kernel` stops its calling thread
// right after the launch is enqueued (as a thread preempted inside the
// driver), until fake_cuda_launch_resume or `timeout_ms` pass.
// fake_cuda_launch_wait_paused waits up to `timeout_ms` for that stop: 1
// when a launch is stopped.
void fake_cuda_launch_pause(const char* kernel, int timeout_ms);
int fake_cuda_launch_wait_paused(int timeout_ms);
void fake_cuda_launch_resume(void);
// Work held on `stream`, not yet run.
long fake_cuda_stream_pending(struct CUstream_st* stream);
// Work recorded into a graph by stream capture (cuStreamEndCapture's graph).
long fake_cuda_graph_node_count(struct CUgraph_st* graph);
// Modules loaded by cuModuleLoadData and not yet unloaded.
int fake_cuda_live_modules(void);
// The fake's own function for `name` as its cuGetProcAddress gives it
// (CUDA 13.0; the _ptsz version when per_thread), out of an interposer's
// reach; NULL when unknown.
void* fake_cuda_entry_point(const char* name, int per_thread);

// ---- fake libcudart.so.13 ----
// Allocations the runtime made itself (cudaMalloc, cudaMallocManaged,
// cudaMallocPitch, cudaMallocAsync) and not yet freed; with
// FAKE_CUDART_VIA_DRIVER=1 cudaMalloc's are the driver's instead.
int fake_cudart_live_allocations(void);
// Calls of a runtime function so far.
long fake_cudart_call_count(const char* function);
// Bytes of the runtime's own allocations charged against FAKE_CUDA_DEVICE_MEMORY.
size_t fake_cudart_allocated_device_bytes(void);
// Events created and not yet destroyed.
int fake_cudart_live_events(void);
// 1 if cudaDeviceEnablePeerAccess let `device` use `peer`'s memory.
int fake_cudart_peer_access_enabled(int device, int peer);
// cudaDeviceSynchronize calls made while `device` was current.
long fake_cudart_synchronize_count(int device);
// Test control: work queued on `stream` (a cudaStream_t; 0 is the legacy
// default stream) from now on is not done until fake_cudart_stream_release.
// 0 on success, -1 for an unknown stream.
int fake_cudart_stream_block(void* stream);
int fake_cudart_stream_release(void* stream);

#ifdef __cplusplus
}  // extern "C"
#endif
