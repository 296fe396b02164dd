// A CUDA program for the policy and API-coverage LD_PRELOAD tests:
// `api_program SCENARIO`. Linked against the fake libcudart.so.13 and the
// fake libcuda.so.1, so it calls runtime and driver entry points directly,
// as frameworks do.
//
// stdout carries what must not change under libegm.so (call results, data
// checks); what may change (which library served an allocation, live counts,
// reported memory sizes) goes as KEY=VALUE lines to ALLOC_PROGRAM_REPORT.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

// Declared by cuda_runtime_api.h only for per-thread-default-stream builds.
extern "C" cudaError_t cudaMallocAsync_ptsz(void** pointer, size_t size, cudaStream_t stream);
extern "C" cudaError_t cudaFreeAsync_ptsz(void* pointer, cudaStream_t stream);

namespace {

using test_program::address_of;
using test_program::hex;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kAllocSize = 3 * kMiB + 123;  // not a multiple of the granularity
constexpr size_t kManagedSize = 5 * kMiB;
constexpr size_t kPitchWidth = 1000;
constexpr size_t kPitchHeight = 300;
constexpr int kDriverVersionAsked = 12000;

// ---- the report ----

// ---- the doubles' inspection functions (linked: the program needs both fakes) ----

void report_counts(const std::string& prefix) {
  report(prefix + ".cuda_handles", std::to_string(fake_cuda_live_handles()));
  report(prefix + ".cuda_reservations", std::to_string(fake_cuda_live_reservations()));
  report(prefix + ".cuda_mappings", std::to_string(fake_cuda_live_mappings()));
  report(prefix + ".cuda_memory_objects", std::to_string(fake_cuda_live_memory_objects()));
  report(prefix + ".cuda_allocations", std::to_string(fake_cuda_live_allocations()));
  report(prefix + ".cudart_allocations", std::to_string(fake_cudart_live_allocations()));
  report(prefix + ".cudart_events", std::to_string(fake_cudart_live_events()));
}

void report_calls(const std::vector<const char*>& driver, const std::vector<const char*>& runtime) {
  for (const char* name : driver)
    report(std::string("calls.") + name, std::to_string(fake_cuda_call_count(name)));
  for (const char* name : runtime)
    report(std::string("calls.") + name, std::to_string(fake_cudart_call_count(name)));
}

bool is_mapped_by_driver(const void* pointer) {
  return fake_cuda_mapping_of(pointer, nullptr, nullptr) == 1;
}

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

const char* name_of(CUresult result) {
  const char* name = nullptr;
  return cuGetErrorName(result, &name) == CUDA_SUCCESS && name ? name : "CUDA_ERROR_UNKNOWN_CODE";
}

// ---- using memory from the CPU ----

uint8_t pattern_byte(size_t index, uint8_t seed) {
  return static_cast<uint8_t>((index * 131) ^ (index >> 9) ^ seed);
}

// Writes and reads back every byte: faults if the memory is not CPU-usable.
bool pattern_holds(void* pointer, size_t size, uint8_t seed) {
  auto* bytes = static_cast<uint8_t*>(pointer);
  for (size_t i = 0; i < size; ++i) bytes[i] = pattern_byte(i, seed);
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != pattern_byte(i, seed)) return false;
  }
  return true;
}

// Reports where the allocation `label` came from and checks it from the CPU.
void use_allocation(const std::string& label, void* pointer, size_t size) {
  report(label + ".addr", address_of(pointer));
  report(label + ".redirected", is_mapped_by_driver(pointer) ? "1" : "0");
  report(label + ".host_access", std::to_string(fake_cuda_host_access_granted(pointer)));
  report_counts(label + ".after_alloc");
  std::printf("%s size=%zu pattern_ok=%d\n", label.c_str(), size, pattern_holds(pointer, size, 7));
}

// ---- series: allocations described by ALLOC_SERIES ----

// "3M" -> 3 MiB; plain numbers are bytes.
size_t parse_size(const std::string& text) {
  char* end = nullptr;
  size_t value = std::strtoull(text.c_str(), &end, 10);
  switch (*end) {
    case 'K': return value << 10;
    case 'M': return value << 20;
    case 'G': return value << 30;
    default: return value;
  }
}

struct Allocation {
  std::string label;
  std::string api;
  void* pointer = nullptr;
};

bool is_driver_api(const std::string& api) {
  return api.rfind("cu", 0) == 0 && api.rfind("cuda", 0) != 0;
}

// The call's result name; *pointer is set on success.
std::string allocate_with(const std::string& api, void** pointer, size_t size) {
  auto* address = reinterpret_cast<CUdeviceptr*>(pointer);
  if (api == "cudaMalloc") return name_of(cudaMalloc(pointer, size));
  if (api == "cudaMallocManaged")
    return name_of(cudaMallocManaged(pointer, size, cudaMemAttachGlobal));
  if (api == "cuMemAlloc") return name_of(cuMemAlloc(address, size));
  if (api == "cuMemAllocManaged")
    return name_of(cuMemAllocManaged(address, size, CU_MEM_ATTACH_GLOBAL));
  return "unknown-api";
}

std::string free_with(const std::string& api, void* pointer) {
  if (is_driver_api(api)) return name_of(cuMemFree(reinterpret_cast<CUdeviceptr>(pointer)));
  return name_of(cudaFree(pointer));
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (size_t end; (end = text.find(separator, begin)) != std::string::npos; begin = end + 1) {
    parts.push_back(text.substr(begin, end - begin));
  }
  parts.push_back(text.substr(begin));
  return parts;
}

// "API:SIZE" allocates; "device:N" makes GPU N current.
void run_series_item(const std::string& item, std::vector<Allocation>& live) {
  std::vector<std::string> parts = split(item, ':');
  if (parts.size() != 2) return;
  if (parts[0] == "device") {
    std::printf("cudaSetDevice(%s)=%s\n", parts[1].c_str(),
                name_of(cudaSetDevice(std::atoi(parts[1].c_str()))));
    return;
  }
  Allocation allocation{"a" + std::to_string(live.size() + 1), parts[0]};
  size_t size = parse_size(parts[1]);
  std::string result = allocate_with(allocation.api, &allocation.pointer, size);
  std::printf("%s %s(%zu)=%s\n", allocation.label.c_str(), allocation.api.c_str(), size,
              result.c_str());
  report(allocation.label + ".result", result);
  if (allocation.pointer != nullptr) use_allocation(allocation.label, allocation.pointer, size);
  live.push_back(allocation);
}

int scenario_series() {
  const char* series = std::getenv("ALLOC_SERIES");
  if (series == nullptr) return 2;
  std::vector<Allocation> live;
  for (const std::string& item : split(series, ',')) run_series_item(item, live);
  report_counts("all.after_alloc");
  std::printf("cudaGetLastError=%s\n", name_of(cudaGetLastError()));
  for (const Allocation& allocation : live) {
    if (allocation.pointer == nullptr) continue;
    std::printf("%s free=%s\n", allocation.label.c_str(),
                free_with(allocation.api, allocation.pointer).c_str());
  }
  report_counts("all.after_free");
  report_calls(
      {"cuMemAlloc_v2", "cuMemAllocManaged", "cuMemFree_v2", "cuMemCreate", "cuGetProcAddress_v2"},
      {"cudaMalloc", "cudaMallocManaged", "cudaFree"});
  return 0;
}

// ---- driver API called directly ----

// Allocates with `allocate`, uses the memory, frees it with `free`.
int alloc_use_free(const std::string& label, size_t size,
                   const std::function<CUresult(CUdeviceptr*)>& allocate,
                   const std::function<CUresult(CUdeviceptr)>& free) {
  CUdeviceptr address = 0;
  CUresult result = allocate(&address);
  std::printf("%s alloc=%s\n", label.c_str(), name_of(result));
  if (result != CUDA_SUCCESS) return 1;
  use_allocation(label, reinterpret_cast<void*>(address), size);
  std::printf("%s free=%s\n", label.c_str(), name_of(free(address)));
  report_counts(label + ".after_free");
  return 0;
}

CUresult free_linked(CUdeviceptr address) { return cuMemFree(address); }

int scenario_cu_alloc() {
  return alloc_use_free(
      "cu", kAllocSize, [](CUdeviceptr* p) { return cuMemAlloc(p, kAllocSize); }, free_linked);
}

int scenario_cu_managed() {
  return alloc_use_free(
      "cu", kManagedSize,
      [](CUdeviceptr* p) { return cuMemAllocManaged(p, kManagedSize, CU_MEM_ATTACH_GLOBAL); },
      free_linked);
}

int scenario_cu_pitch() {
  size_t pitch = 0;
  auto allocate = [&pitch](CUdeviceptr* p) {
    return cuMemAllocPitch(p, &pitch, kPitchWidth, kPitchHeight, 4);
  };
  CUdeviceptr address = 0;
  CUresult result = allocate(&address);
  std::printf("cu alloc=%s pitch=%zu\n", name_of(result), pitch);
  if (result != CUDA_SUCCESS) return 1;
  use_allocation("cu", reinterpret_cast<void*>(address), pitch * kPitchHeight);
  std::printf("cu free=%s\n", name_of(cuMemFree(address)));
  report_counts("cu.after_free");
  return 0;
}

int scenario_cu_free_foreign() {
  int on_stack = 0;
  std::printf("cuMemFree(0x1000)=%s\n", name_of(cuMemFree(0x1000)));
  std::printf("cuMemFree(stack)=%s\n",
              name_of(cuMemFree(reinterpret_cast<CUdeviceptr>(&on_stack))));
  std::printf("cuMemFree(0)=%s\n", name_of(cuMemFree(0)));
  return 0;
}

void report_memory(const std::string& label, size_t free, size_t total) {
  report(label + ".free", std::to_string(free));
  report(label + ".total", std::to_string(total));
}

int scenario_cu_meminfo() {
  size_t free = 0, total = 0;
  std::printf("cuMemGetInfo=%s\n", name_of(cuMemGetInfo(&free, &total)));
  report_memory("before", free, total);
  CUdeviceptr address = 0;
  std::printf("cuMemAlloc=%s\n", name_of(cuMemAlloc(&address, kAllocSize)));
  std::printf("cuMemGetInfo=%s\n", name_of(cuMemGetInfo(&free, &total)));
  report_memory("after", free, total);
  std::printf("cuMemFree=%s\n", name_of(cuMemFree(address)));
  return 0;
}

int scenario_rt_meminfo() {
  size_t free = 0, total = 0;
  std::printf("cudaMemGetInfo=%s\n", name_of(cudaMemGetInfo(&free, &total)));
  report_memory("before", free, total);
  void* pointer = nullptr;
  std::printf("cudaMalloc=%s\n", name_of(cudaMalloc(&pointer, kAllocSize)));
  std::printf("cudaMemGetInfo=%s\n", name_of(cudaMemGetInfo(&free, &total)));
  report_memory("after", free, total);
  std::printf("cudaFree=%s\n", name_of(cudaFree(pointer)));
  return 0;
}

// ---- reaching the driver without the dynamic linker ----

using GetProcAddress = CUresult (*)(const char*, void**, int, cuuint64_t,
                                    CUdriverProcAddressQueryResult*);
using GetProcAddressV1 = CUresult (*)(const char*, void**, int, cuuint64_t);
using MemAlloc = CUresult (*)(CUdeviceptr*, size_t);
using MemAllocManaged = CUresult (*)(CUdeviceptr*, size_t, unsigned);
using MemFree = CUresult (*)(CUdeviceptr);

// `name` through `get_proc_address`, printing the outcome.
template <typename Fn>
Fn look_up(GetProcAddress get_proc_address, const char* name) {
  void* function = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult result =
      get_proc_address(name, &function, kDriverVersionAsked, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  std::printf("cuGetProcAddress(%s)=%s status=%d found=%d\n", name, name_of(result), status,
              function != nullptr);
  return reinterpret_cast<Fn>(function);
}

// Allocates and frees through functions found by cuGetProcAddress_v2.
int alloc_through(GetProcAddress get_proc_address) {
  auto allocate = look_up<MemAlloc>(get_proc_address, "cuMemAlloc");
  auto free = look_up<MemFree>(get_proc_address, "cuMemFree");
  look_up<void*>(get_proc_address, "cuNoSuchFunction");
  if (allocate == nullptr || free == nullptr) return 1;
  report("proc.cuMemAlloc_is_linked_one",
         reinterpret_cast<void*>(allocate) == reinterpret_cast<void*>(&cuMemAlloc) ? "1" : "0");
  return alloc_use_free(
      "proc", kAllocSize, [allocate](CUdeviceptr* p) { return allocate(p, kAllocSize); }, free);
}

int scenario_proc_address() { return alloc_through(&cuGetProcAddress); }

// The v1 entry point, found as a program built against an older cuda.h would call it.
int scenario_proc_address_v1() {
  auto v1 = reinterpret_cast<GetProcAddressV1>(dlsym(RTLD_DEFAULT, "cuGetProcAddress"));
  if (v1 == nullptr) return 1;
  void* allocate = nullptr;
  void* free = nullptr;
  std::printf("v1(cuMemAllocManaged)=%s\n",
              name_of(v1("cuMemAllocManaged", &allocate, kDriverVersionAsked, 0)));
  std::printf("v1(cuMemFree)=%s\n", name_of(v1("cuMemFree", &free, kDriverVersionAsked, 0)));
  if (allocate == nullptr || free == nullptr) return 1;
  auto allocate_managed = reinterpret_cast<MemAllocManaged>(allocate);
  return alloc_use_free(
      "proc", kManagedSize,
      [allocate_managed](CUdeviceptr* p) {
        return allocate_managed(p, kManagedSize, CU_MEM_ATTACH_GLOBAL);
      },
      reinterpret_cast<MemFree>(free));
}

// What a statically linked runtime does: its own dlopen of the driver and a
// dlsym of cuGetProcAddress_v2 on that handle.
int scenario_static_runtime() {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return 1;
  auto get_proc_address = reinterpret_cast<GetProcAddress>(dlsym(library, "cuGetProcAddress_v2"));
  if (get_proc_address == nullptr) return 1;
  return alloc_through(get_proc_address);
}

int scenario_dlsym_handle() {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return 1;
  auto allocate = reinterpret_cast<MemAlloc>(dlsym(library, "cuMemAlloc_v2"));
  auto free = reinterpret_cast<MemFree>(dlsym(library, "cuMemFree_v2"));
  if (allocate == nullptr || free == nullptr) return 1;
  report("dlsym.cuMemAlloc_is_linked_one",
         reinterpret_cast<void*>(allocate) == reinterpret_cast<void*>(&cuMemAlloc) ? "1" : "0");
  return alloc_use_free(
      "dlsym", kAllocSize, [allocate](CUdeviceptr* p) { return allocate(p, kAllocSize); }, free);
}

// ---- runtime: stream-ordered and pitched allocations ----

struct AsyncCalls {
  cudaError_t (*allocate)(void**, size_t, cudaStream_t);
  cudaError_t (*free)(void*, cudaStream_t);
};

enum class AfterRelease { kNextCall, kExit };

// A cudaMalloc/cudaFree pair: the shim runs (and may finish deferred frees).
void let_the_shim_run(const std::string& label) {
  void* pointer = nullptr;
  std::printf("%s cudaMalloc=%s\n", label.c_str(), name_of(cudaMalloc(&pointer, kMiB)));
  std::printf("%s cudaFree=%s\n", label.c_str(), name_of(cudaFree(pointer)));
}

// Frees on a blocked stream: the memory must stay mapped while the stream's
// work is not done, even when the shim runs, and be unmapped once it is done
// and the shim runs again.
int async_free_on_blocked_stream(cudaStream_t stream, const AsyncCalls& calls, AfterRelease then) {
  std::printf("block=%d\n", fake_cudart_stream_block(stream));
  void* pointer = nullptr;
  std::printf("cudaMallocAsync=%s\n", name_of(calls.allocate(&pointer, kAllocSize, stream)));
  if (pointer == nullptr) return 1;
  use_allocation("async", pointer, kAllocSize);
  std::printf("cudaFreeAsync=%s\n", name_of(calls.free(pointer, stream)));
  report("async.mapped_after_free_async", is_mapped_by_driver(pointer) ? "1" : "0");
  report_counts("async.after_free_async");
  let_the_shim_run("while-blocked");
  report("async.mapped_while_blocked", is_mapped_by_driver(pointer) ? "1" : "0");
  std::printf("release=%d\n", fake_cudart_stream_release(stream));
  report("async.mapped_after_release", is_mapped_by_driver(pointer) ? "1" : "0");
  if (then == AfterRelease::kExit) return 0;
  let_the_shim_run("after-release");
  report("async.mapped_after_next_call", is_mapped_by_driver(pointer) ? "1" : "0");
  report_counts("async.after_all");
  return 0;
}

cudaStream_t new_stream() {
  cudaStream_t stream = nullptr;
  std::printf("cudaStreamCreate=%s\n", name_of(cudaStreamCreate(&stream)));
  return stream;
}

int scenario_async() {
  return async_free_on_blocked_stream(new_stream(), {cudaMallocAsync, cudaFreeAsync},
                                      AfterRelease::kNextCall);
}

int scenario_async_exit() {
  return async_free_on_blocked_stream(new_stream(), {cudaMallocAsync, cudaFreeAsync},
                                      AfterRelease::kExit);
}

int scenario_async_ptsz() {
  return async_free_on_blocked_stream(
      cudaStreamPerThread, {cudaMallocAsync_ptsz, cudaFreeAsync_ptsz}, AfterRelease::kNextCall);
}

int scenario_pitch() {
  void* pointer = nullptr;
  size_t pitch = 0;
  cudaError_t result = cudaMallocPitch(&pointer, &pitch, kPitchWidth, kPitchHeight);
  std::printf("cudaMallocPitch=%s pitch=%zu\n", name_of(result), pitch);
  if (pointer == nullptr) return 1;
  use_allocation("pitch", pointer, pitch * kPitchHeight);
  std::printf("cudaFree=%s\n", name_of(cudaFree(pointer)));
  report_counts("pitch.after_free");
  return 0;
}

const std::map<std::string, std::function<int()>>& scenarios() {
  static const auto* table = new std::map<std::string, std::function<int()>>{
      {"series", scenario_series},
      {"cu-alloc", scenario_cu_alloc},
      {"cu-managed", scenario_cu_managed},
      {"cu-pitch", scenario_cu_pitch},
      {"cu-free-foreign", scenario_cu_free_foreign},
      {"cu-meminfo", scenario_cu_meminfo},
      {"rt-meminfo", scenario_rt_meminfo},
      {"proc-address", scenario_proc_address},
      {"proc-address-v1", scenario_proc_address_v1},
      {"static-runtime", scenario_static_runtime},
      {"dlsym-handle", scenario_dlsym_handle},
      {"async", scenario_async},
      {"async-exit", scenario_async_exit},
      {"async-ptsz", scenario_async_ptsz},
      {"pitch", scenario_pitch},
  };
  return *table;
}

}  // namespace

int main(int argc, char** argv) {
  return test_program::run_scenario("api_program", scenarios(), argc, argv);
}
