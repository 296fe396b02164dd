// Fake libcudart.so.13 for CPU-only tests: "device" memory is plain host
// memory (one anonymous mapping per allocation), so a program can check its
// data from the CPU whether or not libegm.so redirected an allocation.
// Allocations other than managed ones are charged against
// FAKE_CUDA_DEVICE_MEMORY and fail with cudaErrorMemoryAllocation beyond it.
//
// By default it does not use the fake driver: the shim must work with any
// runtime. With FAKE_CUDART_VIA_DRIVER=1, cudaMalloc, cudaFree and
// cudaMemGetInfo go through libcuda.so.1 the way the real runtime does:
// dlopen, dlsym of cuGetProcAddress_v2, then cuGetProcAddress_v2 for each
// driver function.
//
// Managed-memory calls and cudaPointerGetAttributes go to the fake driver
// (through cuGetProcAddress, as the real runtime's do), so they know the
// runtime's allocations only with FAKE_CUDART_VIA_DRIVER=1 (which also
// routes cudaMallocManaged). cudaLaunchKernel(_ptsz) launches the fake
// driver's kernels through its cuLaunchKernel(_ptsz), found by
// cuGetProcAddress. cudaStreamBeginCapture/EndCapture only switch
// what cudaStreamIsCapturing reports.
//
// Streams and events: work queued on a stream is done at once, unless a test
// blocks the stream (fake_cudart_stream_block); an event recorded on a
// blocked stream is not ready (cudaEventQuery: cudaErrorNotReady) until the
// stream is released. cudaDeviceSynchronize never waits for those (a blocked
// stream would hang the test); it and cudaFree complete the fake driver's
// held kernels and copies (fake_cuda_synchronize_all), as a real device
// synchronization does.
//
// Several devices (FAKE_CUDA_DEVICE_COUNT): the current device is per thread
// (cudaSetDevice), every pair of distinct devices can access each other
// (cudaDeviceCanAccessPeer), cudaDeviceEnablePeerAccess records the pair, and
// cudaMemcpyPeer is a plain copy. Allocations are not kept per device; streams
// and events are (the device current at their creation; a built-in stream is
// the current device's). cudaStreamSynchronize completes the held work of the
// stream (the wait the real call does); cudaDeviceReset destroys the current
// device's streams and events too. Stream capture: between
// cudaStreamBeginCapture and cudaStreamEndCapture an event recorded on the
// stream is a captured one (cudaEventQuery: cudaErrorCapturedEvent).
//
// Settings (read on every call): FAKE_CUDA_DEVICE_COUNT (default 1),
// FAKE_CUDA_DEVICE_MEMORY (bytes, default 80 GiB), FAKE_CUDART_VIA_DRIVER,
// FAKE_CUDART_FAIL (fail_injection.h; default code cudaErrorMemoryAllocation).
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>

#include "tests/doubles/fail_injection.h"
#include "tests/doubles/fake_control.h"
#include "tests/doubles/fake_env.h"

namespace {

constexpr long kDefaultDeviceMemory = 80L << 30;
constexpr size_t kPitchAlignment = 512;
// The CUDA version the runtime asks the driver's functions for.
constexpr int kRuntimeCudaVersion = 13000;

struct Allocation {
  size_t length = 0;   // bytes mapped
  size_t charged = 0;  // bytes counted against the device memory (0 for managed memory)
};

// A test can hold back a stream's work: blocks are numbered, and a release
// completes every block so far.
struct Stream {
  int device = 0;
  bool blocked = false;
  bool capturing = false;  // between cudaStreamBeginCapture and cudaStreamEndCapture
  uint64_t blocks_started = 0;
  uint64_t blocks_released = 0;
};

struct Event {
  cudaStream_t stream = nullptr;
  uint64_t waits_for_block = 0;  // 0 = complete when recorded
  int device = 0;
  bool captured = false;  // recorded while its stream was capturing
};

struct RuntimeState {
  std::mutex mutex;
  std::map<uintptr_t, Allocation> allocations;  // start -> allocation
  size_t charged_bytes = 0;
  std::map<cudaStream_t, Stream> streams;  // created ones and the built-in ones, once used
  std::map<cudaEvent_t, Event> events;
  std::set<std::pair<int, int>> peer_access;  // (device, peer) enabled by cudaDeviceEnablePeerAccess
  uintptr_t next_handle = 0x5e000000;
  std::map<int, long> synchronizations;  // device -> cudaDeviceSynchronize calls
};

fake::FailureInjector& injector() {
  static fake::FailureInjector* failures =
      new fake::FailureInjector("FAKE_CUDART_FAIL", cudaErrorMemoryAllocation);
  return *failures;
}

RuntimeState& state();

// The fake's locks are held across fork(), so that a forked child can make
// calls whatever the parent's other threads were doing (a test of the shim
// in a child must not hang on the fake's own locks).
void lock_before_fork() {
  injector().lock_for_fork();
  state().mutex.lock();
}

void unlock_after_fork() {
  state().mutex.unlock();
  injector().unlock_after_fork();
}

// Never destroyed: frees may arrive while the process exits.
RuntimeState& state() {
  static RuntimeState* runtime = [] {
    injector();
    auto* created = new RuntimeState();
    pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);
    return created;
  }();
  return *runtime;
}

thread_local int current_device = 0;
thread_local cudaError_t last_error = cudaSuccess;

// Like the real runtime, a failing call is remembered for cudaGetLastError.
cudaError_t record(cudaError_t result) {
  if (result != cudaSuccess) last_error = result;
  return result;
}

// Counts the call; the injected failure code, or cudaSuccess to go on.
cudaError_t injected_failure(std::string_view function) {
  return static_cast<cudaError_t>(injector().on_call(function));
}

int device_count() { return static_cast<int>(fake::env_number("FAKE_CUDA_DEVICE_COUNT", 1)); }

bool is_valid_device(int device) { return device >= 0 && device < device_count(); }

size_t round_up(size_t value, size_t unit) { return (value + unit - 1) / unit * unit; }

size_t device_memory() {
  return static_cast<size_t>(fake::env_number("FAKE_CUDA_DEVICE_MEMORY", kDefaultDeviceMemory));
}

size_t free_device_memory(const RuntimeState& runtime) {
  size_t total = device_memory();
  return runtime.charged_bytes < total ? total - runtime.charged_bytes : 0;
}

// `charge`d allocations fail beyond the free device memory.
cudaError_t allocate(void** pointer, size_t size, bool charge) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  if (charge && size > free_device_memory(runtime)) return cudaErrorMemoryAllocation;
  size_t length = round_up(size, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  void* memory = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return cudaErrorMemoryAllocation;
  size_t charged = charge ? size : 0;
  runtime.allocations[reinterpret_cast<uintptr_t>(memory)] = Allocation{length, charged};
  runtime.charged_bytes += charged;
  *pointer = memory;
  return cudaSuccess;
}

// false when `pointer` is not one of the runtime's own allocations.
bool free_own(void* pointer) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  auto it = runtime.allocations.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == runtime.allocations.end()) return false;
  munmap(pointer, it->second.length);
  runtime.charged_bytes -= it->second.charged;
  runtime.allocations.erase(it);
  return true;
}

// cudaMalloc's size rules: 0 bytes is success and no memory.
cudaError_t allocate_device(void** pointer, size_t size) {
  if (pointer == nullptr) return cudaErrorInvalidValue;
  if (size == 0) {
    *pointer = nullptr;
    return cudaSuccess;
  }
  return allocate(pointer, size, /*charge=*/true);
}

// ---- the driver, reached as the real runtime reaches it ----

bool via_driver() { return fake::env_number("FAKE_CUDART_VIA_DRIVER", 0) != 0; }

struct DriverFunctions {
  decltype(&cuMemAlloc_v2) mem_alloc = nullptr;
  decltype(&cuMemFree_v2) mem_free = nullptr;
  decltype(&cuMemGetInfo_v2) mem_get_info = nullptr;
  // Managed memory and pointer queries always go to the driver, as in the
  // real runtime (they know the runtime's own allocations only with
  // FAKE_CUDART_VIA_DRIVER=1).
  decltype(&cuMemAllocManaged) mem_alloc_managed = nullptr;
  decltype(&cuStreamAttachMemAsync) stream_attach = nullptr;
  decltype(&cuMemPrefetchAsync_v2) prefetch = nullptr;
  decltype(&cuMemPrefetchBatchAsync) prefetch_batch = nullptr;
  decltype(&cuMemDiscardBatchAsync) discard_batch = nullptr;
  decltype(&cuMemAdvise_v2) advise = nullptr;
  decltype(&cuMemRangeGetAttribute) range_attribute = nullptr;
  decltype(&cuMemRangeGetAttributes) range_attributes = nullptr;
  decltype(&cuPointerGetAttributes) pointer_attributes = nullptr;
  // IPC handles are opened and closed by the driver, as in the real runtime.
  decltype(&cuIpcOpenMemHandle_v2) ipc_open = nullptr;
  decltype(&cuIpcCloseMemHandle) ipc_close = nullptr;
  // Kernel launches go to the driver's cuLaunchKernel, the per-thread
  // default stream's version for cudaLaunchKernel_ptsz, as in the real runtime.
  decltype(&cuLaunchKernel) launch_kernel = nullptr;
  decltype(&cuLaunchKernel) launch_kernel_ptsz = nullptr;
};

template <typename Fn>
void look_up(decltype(&cuGetProcAddress_v2) get_proc_address, const char* name, Fn& function,
             cuuint64_t flags = CU_GET_PROC_ADDRESS_DEFAULT) {
  void* found = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  if (get_proc_address(name, &found, kRuntimeCudaVersion, flags, &status) ==
          CUDA_SUCCESS &&
      status == CU_GET_PROC_ADDRESS_SUCCESS) {
    function = reinterpret_cast<Fn>(found);
  }
}

DriverFunctions load_driver_functions() {
  DriverFunctions functions;
  void* library = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (library == nullptr) return functions;
  auto get_proc_address =
      reinterpret_cast<decltype(&cuGetProcAddress_v2)>(dlsym(library, "cuGetProcAddress_v2"));
  if (get_proc_address == nullptr) return functions;
  look_up(get_proc_address, "cuMemAlloc", functions.mem_alloc);
  look_up(get_proc_address, "cuMemFree", functions.mem_free);
  look_up(get_proc_address, "cuMemGetInfo", functions.mem_get_info);
  look_up(get_proc_address, "cuMemAllocManaged", functions.mem_alloc_managed);
  look_up(get_proc_address, "cuStreamAttachMemAsync", functions.stream_attach);
  look_up(get_proc_address, "cuMemPrefetchAsync", functions.prefetch);
  look_up(get_proc_address, "cuMemPrefetchBatchAsync", functions.prefetch_batch);
  look_up(get_proc_address, "cuMemDiscardBatchAsync", functions.discard_batch);
  look_up(get_proc_address, "cuMemAdvise", functions.advise);
  look_up(get_proc_address, "cuMemRangeGetAttribute", functions.range_attribute);
  look_up(get_proc_address, "cuMemRangeGetAttributes", functions.range_attributes);
  look_up(get_proc_address, "cuPointerGetAttributes", functions.pointer_attributes);
  look_up(get_proc_address, "cuIpcOpenMemHandle", functions.ipc_open);
  look_up(get_proc_address, "cuIpcCloseMemHandle", functions.ipc_close);
  look_up(get_proc_address, "cuLaunchKernel", functions.launch_kernel);
  look_up(get_proc_address, "cuLaunchKernel", functions.launch_kernel_ptsz,
          CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  return functions;
}

// Loaded on first use, as the real runtime initializes lazily.
const DriverFunctions& driver() {
  static const DriverFunctions* functions = new DriverFunctions(load_driver_functions());
  return *functions;
}

// The driver's codes the runtime passes on have the same values.
cudaError_t runtime_error_of(CUresult result) { return static_cast<cudaError_t>(result); }

cudaError_t allocate_through_driver(void** pointer, size_t size) {
  if (pointer == nullptr) return cudaErrorInvalidValue;
  if (size == 0) {
    *pointer = nullptr;
    return cudaSuccess;
  }
  if (driver().mem_alloc == nullptr) return cudaErrorInitializationError;
  return runtime_error_of(driver().mem_alloc(reinterpret_cast<CUdeviceptr*>(pointer), size));
}

// The fake driver's held stream work completed, when the driver is loaded:
// what the real cudaDeviceSynchronize and cudaFree wait for.
void complete_driver_work() {
  using Synchronize = void (*)();
  static Synchronize synchronize = [] {
    void* library = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
    return library ? reinterpret_cast<Synchronize>(dlsym(library, "fake_cuda_synchronize_all"))
                   : nullptr;
  }();
  if (synchronize != nullptr) synchronize();
}

cudaError_t free_through_driver(void* pointer) {
  if (driver().mem_free == nullptr) return cudaErrorInitializationError;
  return runtime_error_of(driver().mem_free(reinterpret_cast<CUdeviceptr>(pointer)));
}

// ---- streams and events ----

bool is_built_in_stream(cudaStream_t stream) {
  return stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
}

// The stream's state, or nullptr for an unknown handle. Call with the lock held.
Stream* find_stream(RuntimeState& runtime, cudaStream_t stream) {
  auto it = runtime.streams.find(stream);
  if (it != runtime.streams.end()) return &it->second;
  if (!is_built_in_stream(stream)) return nullptr;
  Stream& built_in = runtime.streams[stream];
  built_in.device = current_device;
  return &built_in;
}

bool is_known_stream(cudaStream_t stream) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  return find_stream(runtime, stream) != nullptr;
}

template <typename Handle>
Handle new_handle(RuntimeState& runtime) {
  runtime.next_handle += 0x10;
  return reinterpret_cast<Handle>(runtime.next_handle);
}

bool event_is_ready(RuntimeState& runtime, const Event& event) {
  if (event.waits_for_block == 0) return true;
  Stream* stream = find_stream(runtime, event.stream);
  return stream == nullptr || stream->blocks_released >= event.waits_for_block;
}

struct ErrorText {
  cudaError_t code;
  const char* name;
  const char* text;
};

constexpr ErrorText kErrors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorCudartUnloading, "cudaErrorCudartUnloading", "driver shutting down"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
     "invalid copy direction for memcpy"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorDeviceUninitialized, "cudaErrorDeviceUninitialized", "invalid device context"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorCapturedEvent, "cudaErrorCapturedEvent",
     "operation not permitted on an event last recorded in a capturing stream"},
    {cudaErrorPeerAccessAlreadyEnabled, "cudaErrorPeerAccessAlreadyEnabled",
     "peer access is already enabled"},
    {cudaErrorPeerAccessNotEnabled, "cudaErrorPeerAccessNotEnabled",
     "peer access has not been enabled"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const ErrorText* find_error(cudaError_t code) {
  for (const ErrorText& error : kErrors) {
    if (error.code == code) return &error;
  }
  return nullptr;
}

// The driver function `fn` on `args`, its error recorded as the runtime's.
template <typename Fn, typename... Args>
cudaError_t through_driver(Fn fn, Args... args) {
  if (fn == nullptr) return record(cudaErrorInitializationError);
  return record(runtime_error_of(fn(args...)));
}

CUmemLocation driver_location(cudaMemLocation location) {
  return {static_cast<CUmemLocationType>(location.type), location.id};
}

bool is_valid_memcpy_kind(cudaMemcpyKind kind) {
  return kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault;
}

}  // namespace

// Everything below is the library's interface: exported despite
// -fvisibility=hidden.
#pragma GCC visibility push(default)
extern "C" {

cudaError_t cudaMalloc(void** pointer, size_t size) {
  if (cudaError_t failure = injected_failure("cudaMalloc")) return record(failure);
  if (via_driver()) return record(allocate_through_driver(pointer, size));
  return record(allocate_device(pointer, size));
}

// Managed memory may oversubscribe the device: not charged.
cudaError_t cudaMallocManaged(void** pointer, size_t size, unsigned int flags) {
  if (cudaError_t failure = injected_failure("cudaMallocManaged")) return record(failure);
  bool known_flags = flags == cudaMemAttachGlobal || flags == cudaMemAttachHost;
  if (pointer == nullptr || size == 0 || !known_flags) return record(cudaErrorInvalidValue);
  if (via_driver()) {
    if (driver().mem_alloc_managed == nullptr) return record(cudaErrorInitializationError);
    return record(runtime_error_of(
        driver().mem_alloc_managed(reinterpret_cast<CUdeviceptr*>(pointer), size, flags)));
  }
  return record(allocate(pointer, size, /*charge=*/false));
}

cudaError_t cudaMallocPitch(void** pointer, size_t* pitch, size_t width, size_t height) {
  if (cudaError_t failure = injected_failure("cudaMallocPitch")) return record(failure);
  if (pitch == nullptr) return record(cudaErrorInvalidValue);
  size_t row = round_up(width, kPitchAlignment);
  cudaError_t result = allocate_device(pointer, row * height);
  if (result == cudaSuccess) *pitch = row;
  return record(result);
}

// Stream-ordered allocation: the fake's memory is ready at once.
cudaError_t cudaMallocAsync(void** pointer, size_t size, cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaMallocAsync")) return record(failure);
  if (!is_known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return record(allocate_device(pointer, size));
}

cudaError_t cudaMallocAsync_ptsz(void** pointer, size_t size, cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaMallocAsync_ptsz")) return record(failure);
  if (!is_known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return record(allocate_device(pointer, size));
}

cudaError_t cudaFree(void* pointer) {
  if (cudaError_t failure = injected_failure("cudaFree")) return record(failure);
  if (pointer == nullptr) return cudaSuccess;
  complete_driver_work();
  if (free_own(pointer)) return cudaSuccess;
  return record(via_driver() ? free_through_driver(pointer) : cudaErrorInvalidValue);
}

// Frees at once: no queued work of the fake ever reads the memory.
cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaFreeAsync")) return record(failure);
  if (!is_known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  if (pointer == nullptr || free_own(pointer)) return cudaSuccess;
  return record(cudaErrorInvalidValue);
}

cudaError_t cudaFreeAsync_ptsz(void* pointer, cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaFreeAsync_ptsz")) return record(failure);
  if (!is_known_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  if (pointer == nullptr || free_own(pointer)) return cudaSuccess;
  return record(cudaErrorInvalidValue);
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  if (cudaError_t failure = injected_failure("cudaMemGetInfo")) return record(failure);
  if (free == nullptr || total == nullptr) return record(cudaErrorInvalidValue);
  if (via_driver()) {
    if (driver().mem_get_info == nullptr) return record(cudaErrorInitializationError);
    return record(runtime_error_of(driver().mem_get_info(free, total)));
  }
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  *free = free_device_memory(runtime);
  *total = device_memory();
  return cudaSuccess;
}


// ---- managed memory, pointer queries, stream capture: through the driver ----

cudaError_t cudaStreamAttachMemAsync(cudaStream_t stream, void* pointer, size_t length,
                                     unsigned int flags) {
  return through_driver(driver().stream_attach, reinterpret_cast<CUstream>(stream),
                        reinterpret_cast<CUdeviceptr>(pointer), length, flags);
}

cudaError_t cudaStreamAttachMemAsync_ptsz(cudaStream_t stream, void* pointer, size_t length,
                                          unsigned int flags) {
  return cudaStreamAttachMemAsync(stream, pointer, length, flags);
}

cudaError_t cudaMemPrefetchAsync(const void* pointer, size_t count, cudaMemLocation location,
                                 unsigned int flags, cudaStream_t stream) {
  return through_driver(driver().prefetch, reinterpret_cast<CUdeviceptr>(pointer), count,
                        driver_location(location), flags, reinterpret_cast<CUstream>(stream));
}

cudaError_t cudaMemPrefetchAsync_ptsz(const void* pointer, size_t count, cudaMemLocation location,
                                      unsigned int flags, cudaStream_t stream) {
  return cudaMemPrefetchAsync(pointer, count, location, flags, stream);
}

cudaError_t cudaMemPrefetchBatchAsync(void** pointers, size_t* sizes, size_t count,
                                      cudaMemLocation* locations, size_t* starts,
                                      size_t location_count, unsigned long long flags,
                                      cudaStream_t stream) {
  static_assert(sizeof(cudaMemLocation) == sizeof(CUmemLocation));
  return through_driver(driver().prefetch_batch, reinterpret_cast<CUdeviceptr*>(pointers), sizes,
                        count, reinterpret_cast<CUmemLocation*>(locations), starts, location_count,
                        flags, reinterpret_cast<CUstream>(stream));
}

cudaError_t cudaMemDiscardBatchAsync(void** pointers, size_t* sizes, size_t count,
                                     unsigned long long flags, cudaStream_t stream) {
  return through_driver(driver().discard_batch, reinterpret_cast<CUdeviceptr*>(pointers), sizes,
                        count, flags, reinterpret_cast<CUstream>(stream));
}

cudaError_t cudaMemAdvise(const void* pointer, size_t count, cudaMemoryAdvise advice,
                          cudaMemLocation location) {
  return through_driver(driver().advise, reinterpret_cast<CUdeviceptr>(pointer), count,
                        static_cast<CUmem_advise>(advice), driver_location(location));
}

cudaError_t cudaMemRangeGetAttribute(void* data, size_t size, cudaMemRangeAttribute attribute,
                                     const void* pointer, size_t count) {
  return through_driver(driver().range_attribute, data, size,
                        static_cast<CUmem_range_attribute>(attribute),
                        reinterpret_cast<CUdeviceptr>(pointer), count);
}

cudaError_t cudaMemRangeGetAttributes(void** data, size_t* sizes,
                                      cudaMemRangeAttribute* attributes, size_t attribute_count,
                                      const void* pointer, size_t count) {
  return through_driver(driver().range_attributes, data, sizes,
                        reinterpret_cast<CUmem_range_attribute*>(attributes), attribute_count,
                        reinterpret_cast<CUdeviceptr>(pointer), count);
}

// As the real runtime builds it from the driver's attributes.
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* pointer) {
  if (attributes == nullptr) return record(cudaErrorInvalidValue);
  unsigned memory_type = 0, is_managed = 0;
  int ordinal = 0;
  void* device_pointer = nullptr;
  void* host_pointer = nullptr;
  CUpointer_attribute asked[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                 CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
                                 CU_POINTER_ATTRIBUTE_HOST_POINTER};
  void* data[] = {&memory_type, &is_managed, &ordinal, &device_pointer, &host_pointer};
  cudaError_t result = through_driver(driver().pointer_attributes, 5u, asked, data,
                                      reinterpret_cast<CUdeviceptr>(pointer));
  if (result != cudaSuccess) return result;
  attributes->type = is_managed ? cudaMemoryTypeManaged
                     : memory_type == CU_MEMORYTYPE_DEVICE ? cudaMemoryTypeDevice
                     : memory_type == CU_MEMORYTYPE_HOST   ? cudaMemoryTypeHost
                                                           : cudaMemoryTypeUnregistered;
  attributes->device = memory_type == 0 ? -2 : ordinal;
  attributes->devicePointer = device_pointer;
  attributes->hostPointer = host_pointer;
  return cudaSuccess;
}

// Kernel launches: `func` is the fake driver's kernel handle
// (fake_cuda_library_kernel, as the real runtime launches CUkernel handles),
// launched by the driver's cuLaunchKernel found through cuGetProcAddress.
cudaError_t cudaLaunchKernel(const void* func, dim3 grid, dim3 block, void** args, size_t shared,
                             cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaLaunchKernel")) return record(failure);
  return through_driver(driver().launch_kernel, reinterpret_cast<CUfunction>(const_cast<void*>(func)),
                        grid.x, grid.y, grid.z, block.x, block.y, block.z,
                        static_cast<unsigned>(shared), reinterpret_cast<CUstream>(stream), args,
                        static_cast<void**>(nullptr));
}

cudaError_t cudaLaunchKernel_ptsz(const void* func, dim3 grid, dim3 block, void** args,
                                  size_t shared, cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaLaunchKernel_ptsz")) return record(failure);
  return through_driver(driver().launch_kernel_ptsz,
                        reinterpret_cast<CUfunction>(const_cast<void*>(func)), grid.x, grid.y,
                        grid.z, block.x, block.y, block.z, static_cast<unsigned>(shared),
                        reinterpret_cast<CUstream>(stream), args, static_cast<void**>(nullptr));
}

// Stream capture: the fake records nothing, it only reports the state.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (cudaError_t failure = injected_failure("cudaStreamBeginCapture")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* known = find_stream(runtime, stream);
  if (known == nullptr || is_built_in_stream(stream)) return record(cudaErrorStreamCaptureUnsupported);
  if (known->capturing) return record(cudaErrorIllegalState);
  known->capturing = true;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (cudaError_t failure = injected_failure("cudaStreamEndCapture")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* known = find_stream(runtime, stream);
  if (known == nullptr || !known->capturing) return record(cudaErrorIllegalState);
  known->capturing = false;
  if (graph != nullptr) *graph = reinterpret_cast<cudaGraph_t>(new_handle<uintptr_t>(runtime));
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (cudaError_t failure = injected_failure("cudaStreamIsCapturing")) return record(failure);
  if (status == nullptr) return record(cudaErrorInvalidValue);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* known = find_stream(runtime, stream);
  if (known == nullptr) return record(cudaErrorInvalidResourceHandle);
  *status = known->capturing ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing_ptsz(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  return cudaStreamIsCapturing(stream == nullptr ? cudaStreamPerThread : stream, status);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  if (cudaError_t failure = injected_failure("cudaStreamCreate")) return record(failure);
  if (stream == nullptr) return record(cudaErrorInvalidValue);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  *stream = new_handle<cudaStream_t>(runtime);
  runtime.streams[*stream] = Stream{current_device};
  return cudaSuccess;
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int* device) {
  if (cudaError_t failure = injected_failure("cudaStreamGetDevice")) return record(failure);
  if (device == nullptr) return record(cudaErrorInvalidValue);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* queue = find_stream(runtime, stream);
  if (queue == nullptr) return record(cudaErrorInvalidResourceHandle);
  *device = is_built_in_stream(stream) ? current_device : queue->device;
  return cudaSuccess;
}

// Waits for the stream: its held work is done when this returns.
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaStreamSynchronize")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* queue = find_stream(runtime, stream);
  if (queue == nullptr) return record(cudaErrorInvalidResourceHandle);
  queue->blocked = false;
  queue->blocks_released = queue->blocks_started;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaStreamDestroy")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  if (is_built_in_stream(stream) || runtime.streams.erase(stream) == 0) {
    return record(cudaErrorInvalidResourceHandle);
  }
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (cudaError_t failure = injected_failure("cudaEventCreateWithFlags")) return record(failure);
  constexpr unsigned kKnownFlags =
      cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
  if (event == nullptr || (flags & ~kKnownFlags) != 0) return record(cudaErrorInvalidValue);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  *event = new_handle<cudaEvent_t>(runtime);
  Event created;
  created.device = current_device;
  runtime.events[*event] = created;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

// Captures the stream's work so far: not done while the stream is blocked.
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (cudaError_t failure = injected_failure("cudaEventRecord")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  auto it = runtime.events.find(event);
  Stream* queue = find_stream(runtime, stream);
  if (it == runtime.events.end() || queue == nullptr) {
    return record(cudaErrorInvalidResourceHandle);
  }
  it->second.stream = stream;
  it->second.waits_for_block = queue->blocked ? queue->blocks_started : 0;
  it->second.captured = queue->capturing;
  return cudaSuccess;
}

// cudaErrorNotReady is a state, not an error: cudaGetLastError does not keep it.
cudaError_t cudaEventQuery(cudaEvent_t event) {
  if (cudaError_t failure = injected_failure("cudaEventQuery")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  auto it = runtime.events.find(event);
  if (it == runtime.events.end()) return record(cudaErrorInvalidResourceHandle);
  if (it->second.captured) return record(cudaErrorCapturedEvent);
  return event_is_ready(runtime, it->second) ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (cudaError_t failure = injected_failure("cudaEventDestroy")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  if (runtime.events.erase(event) == 0) return record(cudaErrorInvalidResourceHandle);
  return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (cudaError_t failure = injected_failure("cudaGetDeviceCount")) return record(failure);
  if (count == nullptr) return record(cudaErrorInvalidValue);
  *count = device_count();
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (cudaError_t failure = injected_failure("cudaGetDevice")) return record(failure);
  if (device == nullptr) return record(cudaErrorInvalidValue);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (cudaError_t failure = injected_failure("cudaSetDevice")) return record(failure);
  if (!is_valid_device(device)) return record(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceCanAccessPeer(int* can_access, int device, int peer) {
  if (cudaError_t failure = injected_failure("cudaDeviceCanAccessPeer")) return record(failure);
  if (can_access == nullptr) return record(cudaErrorInvalidValue);
  if (!is_valid_device(device) || !is_valid_device(peer)) return record(cudaErrorInvalidDevice);
  *can_access = device != peer ? 1 : 0;
  return cudaSuccess;
}

// The current device may now use `peer`'s memory.
cudaError_t cudaDeviceEnablePeerAccess(int peer, unsigned int flags) {
  if (cudaError_t failure = injected_failure("cudaDeviceEnablePeerAccess")) return record(failure);
  if (flags != 0) return record(cudaErrorInvalidValue);
  if (!is_valid_device(peer) || peer == current_device) return record(cudaErrorInvalidDevice);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  if (!runtime.peer_access.insert({current_device, peer}).second) {
    return record(cudaErrorPeerAccessAlreadyEnabled);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceDisablePeerAccess(int peer) {
  if (cudaError_t failure = injected_failure("cudaDeviceDisablePeerAccess")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  if (runtime.peer_access.erase({current_device, peer}) == 0) {
    return record(cudaErrorPeerAccessNotEnabled);
  }
  return cudaSuccess;
}

// The fake's devices share the CPU's memory: a peer copy is a plain copy.
cudaError_t cudaMemcpyPeer(void* destination, int destination_device, const void* source,
                           int source_device, size_t count) {
  if (cudaError_t failure = injected_failure("cudaMemcpyPeer")) return record(failure);
  if (!is_valid_device(destination_device) || !is_valid_device(source_device)) {
    return record(cudaErrorInvalidDevice);
  }
  if (count == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr) return record(cudaErrorInvalidValue);
  std::memmove(destination, source, count);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  if (cudaError_t failure = injected_failure("cudaDeviceSynchronize")) return record(failure);
  {
    RuntimeState& runtime = state();
    std::lock_guard<std::mutex> lock(runtime.mutex);
    ++runtime.synchronizations[current_device];
  }
  complete_driver_work();  // kernels and copies the driver holds (its blocked streams)
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* destination, const void* source, size_t count, cudaMemcpyKind kind) {
  if (cudaError_t failure = injected_failure("cudaMemcpy")) return record(failure);
  if (!is_valid_memcpy_kind(kind)) return record(cudaErrorInvalidMemcpyDirection);
  if (count == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr) return record(cudaErrorInvalidValue);
  std::memmove(destination, source, count);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* pointer, int value, size_t count) {
  if (cudaError_t failure = injected_failure("cudaMemset")) return record(failure);
  if (count == 0) return cudaSuccess;
  if (pointer == nullptr) return record(cudaErrorInvalidValue);
  std::memset(pointer, value, count);
  return cudaSuccess;
}

// ---- for egm-probe --selftest's compatibility checks ----

cudaError_t cudaMemcpy2D(void* destination, size_t destination_pitch, const void* source,
                         size_t source_pitch, size_t width, size_t height, cudaMemcpyKind kind) {
  if (cudaError_t failure = injected_failure("cudaMemcpy2D")) return record(failure);
  if (!is_valid_memcpy_kind(kind)) return record(cudaErrorInvalidMemcpyDirection);
  if (width > destination_pitch || width > source_pitch) return record(cudaErrorInvalidPitchValue);
  if (width == 0 || height == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr) return record(cudaErrorInvalidValue);
  for (size_t row = 0; row < height; ++row) {
    std::memmove(static_cast<char*>(destination) + row * destination_pitch,
                 static_cast<const char*>(source) + row * source_pitch, width);
  }
  return cudaSuccess;
}

// Only cudaMalloc-like memory can be exported: the runtime's own
// allocations, or with FAKE_CUDART_VIA_DRIVER=1 any memory that is not a VMM
// mapping of the fake driver (on a GPU, host-placed VMM memory gives
// cudaErrorInvalidValue). Asked of the fake driver directly, as a shim's
// pointer queries must not change the answer.
cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t* handle, void* pointer) {
  if (cudaError_t failure = injected_failure("cudaIpcGetMemHandle")) return record(failure);
  if (handle == nullptr) return record(cudaErrorInvalidValue);
  std::memset(handle, 0, sizeof *handle);
  if (via_driver()) {
    using MappingOf = int (*)(const void*, uintptr_t*, size_t*);
    auto mapping_of = reinterpret_cast<MappingOf>(dlsym(RTLD_DEFAULT, "fake_cuda_mapping_of"));
    uintptr_t base = 0;
    size_t size = 0;
    if (pointer == nullptr || mapping_of == nullptr || mapping_of(pointer, &base, &size) != 0) {
      return record(cudaErrorInvalidValue);
    }
    std::memcpy(handle->reserved, &pointer, sizeof pointer);
    return cudaSuccess;
  }
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  auto address = reinterpret_cast<uintptr_t>(pointer);
  auto it = runtime.allocations.upper_bound(address);
  if (it == runtime.allocations.begin()) return record(cudaErrorInvalidValue);
  --it;
  if (address >= it->first + it->second.length) return record(cudaErrorInvalidValue);
  std::memcpy(handle->reserved, &it->first, sizeof it->first);
  return cudaSuccess;
}

cudaError_t cudaIpcOpenMemHandle(void** pointer, cudaIpcMemHandle_t handle, unsigned int flags) {
  if (driver().ipc_open == nullptr) return record(cudaErrorInitializationError);
  CUipcMemHandle driver_handle;
  std::memcpy(&driver_handle, &handle, sizeof driver_handle);
  CUdeviceptr opened = 0;
  CUresult result = driver().ipc_open(pointer ? &opened : nullptr, driver_handle, flags);
  if (result == CUDA_SUCCESS) *pointer = reinterpret_cast<void*>(opened);
  return result == CUDA_SUCCESS ? cudaSuccess : record(runtime_error_of(result));
}

cudaError_t cudaIpcCloseMemHandle(void* pointer) {
  if (driver().ipc_close == nullptr) return record(cudaErrorInitializationError);
  CUresult result = driver().ipc_close(reinterpret_cast<CUdeviceptr>(pointer));
  return result == CUDA_SUCCESS ? cudaSuccess : record(runtime_error_of(result));
}

const char* cudaGetErrorName(cudaError_t error) {
  const ErrorText* known = find_error(error);
  return known ? known->name : "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  const ErrorText* known = find_error(error);
  return known ? known->text : "unrecognized error code";
}

cudaError_t cudaGetLastError(void) {
  cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

// Like the real one, destroys every allocation of the device.
cudaError_t cudaDeviceReset(void) {
  if (cudaError_t failure = injected_failure("cudaDeviceReset")) return record(failure);
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  for (const auto& [start, allocation] : runtime.allocations) {
    munmap(reinterpret_cast<void*>(start), allocation.length);
  }
  runtime.allocations.clear();
  runtime.charged_bytes = 0;
  for (auto it = runtime.events.begin(); it != runtime.events.end();) {
    it = it->second.device == current_device ? runtime.events.erase(it) : std::next(it);
  }
  for (auto it = runtime.streams.begin(); it != runtime.streams.end();) {
    bool destroyed = it->second.device == current_device && !is_built_in_stream(it->first);
    it = destroyed ? runtime.streams.erase(it) : std::next(it);
  }
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return record(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

// ---- inspection (fake_control.h) ----

int fake_cudart_live_allocations(void) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  return static_cast<int>(runtime.allocations.size());
}

long fake_cudart_call_count(const char* function) {
  return function == nullptr ? 0 : injector().call_count(function);
}

size_t fake_cudart_allocated_device_bytes(void) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  return runtime.charged_bytes;
}

int fake_cudart_peer_access_enabled(int device, int peer) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  return runtime.peer_access.count({device, peer}) == 1 ? 1 : 0;
}

int fake_cudart_live_events(void) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  return static_cast<int>(runtime.events.size());
}

long fake_cudart_synchronize_count(int device) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  auto it = runtime.synchronizations.find(device);
  return it == runtime.synchronizations.end() ? 0 : it->second;
}

int fake_cudart_stream_block(void* stream) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* queue = find_stream(runtime, static_cast<cudaStream_t>(stream));
  if (queue == nullptr) return -1;
  if (!queue->blocked) ++queue->blocks_started;
  queue->blocked = true;
  return 0;
}

int fake_cudart_stream_release(void* stream) {
  RuntimeState& runtime = state();
  std::lock_guard<std::mutex> lock(runtime.mutex);
  Stream* queue = find_stream(runtime, static_cast<cudaStream_t>(stream));
  if (queue == nullptr) return -1;
  queue->blocked = false;
  queue->blocks_released = queue->blocks_started;
  return 0;
}

}  // extern "C"
#pragma GCC visibility pop
