// A CUDA program for the LD_PRELOAD tests: `alloc_program SCENARIO`.
//
// It runs against the fake libcudart.so.13 (and, through libegm.so, the fake
// libcuda.so.1) and uses its memory from the CPU.
//
// stdout carries only what must not change when libegm.so is preloaded:
// call results, data checksums, live counts once everything is freed. What
// does change (which library served an allocation, access rights, counts
// while memory is live) goes as KEY=VALUE lines to the file named by
// ALLOC_PROGRAM_REPORT, for the test to inspect.
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

namespace {

using test_program::address_of;
using test_program::hex;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
// Not multiples of the 2 MiB granularity: the shim must pad them.
constexpr size_t kMallocSize = 3 * kMiB + 123;
constexpr size_t kManagedSize = 5 * kMiB;
constexpr size_t kSmallSize = 1000;
constexpr int kThreadCount = 4;
constexpr int kRoundsPerThread = 16;
constexpr int kSegfaultExitCode = 86;

// ---- the report (values that legitimately differ under the shim) ----

// ---- the doubles' inspection functions ----

// The fake driver is dlopen'ed RTLD_LOCAL by libegm.so, invisible to
// RTLD_DEFAULT; look in the already loaded library itself (never load it:
// without the shim it must stay absent).
void* fake_symbol(const char* library, const char* name) {
  if (void* symbol = dlsym(RTLD_DEFAULT, name)) return symbol;
  void* handle = dlopen(library, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* symbol = dlsym(handle, name);
  dlclose(handle);
  return symbol;
}

// A count of the fake driver's, 0 while it is not loaded.
int driver_count(const char* function) {
  auto count = reinterpret_cast<int (*)()>(fake_symbol("libcuda.so.1", function));
  return count ? count() : 0;
}

int runtime_count(const char* function) {
  auto count = reinterpret_cast<int (*)()>(fake_symbol("libcudart.so.13", function));
  return count ? count() : -1;
}

int runtime_allocations() { return runtime_count("fake_cudart_live_allocations"); }

struct DriverMapping {
  uintptr_t base = 0;
  size_t size = 0;
};

// The fake driver's mapping holding `pointer`: found only if libegm.so
// redirected the allocation.
bool find_driver_mapping(const void* pointer, DriverMapping& mapping) {
  auto mapping_of = reinterpret_cast<int (*)(const void*, uintptr_t*, size_t*)>(
      fake_symbol("libcuda.so.1", "fake_cuda_mapping_of"));
  return mapping_of && mapping_of(pointer, &mapping.base, &mapping.size) == 1;
}

int host_access_granted(const void* pointer) {
  auto granted = reinterpret_cast<int (*)(const void*)>(
      fake_symbol("libcuda.so.1", "fake_cuda_host_access_granted"));
  return granted ? granted(pointer) : -1;
}

void report_counts(const std::string& prefix) {
  report(prefix + ".cuda_handles", std::to_string(driver_count("fake_cuda_live_handles")));
  report(prefix + ".cuda_reservations",
         std::to_string(driver_count("fake_cuda_live_reservations")));
  report(prefix + ".cuda_mappings", std::to_string(driver_count("fake_cuda_live_mappings")));
  report(prefix + ".cuda_memory_objects",
         std::to_string(driver_count("fake_cuda_live_memory_objects")));
  report(prefix + ".cuda_allocations", std::to_string(driver_count("fake_cuda_live_allocations")));
  report(prefix + ".cudart_allocations", std::to_string(runtime_allocations()));
  report(prefix + ".cudart_events", std::to_string(runtime_count("fake_cudart_live_events")));
}

// Printed only once everything is freed: then equal with and without the shim.
void print_final_counts() {
  std::printf("final cuda_handles=%d cuda_reservations=%d cuda_mappings=%d cudart_allocations=%d\n",
              driver_count("fake_cuda_live_handles"), driver_count("fake_cuda_live_reservations"),
              driver_count("fake_cuda_live_mappings"), runtime_allocations());
}

// ---- using memory from the CPU ----

uint8_t pattern_byte(size_t index, uint8_t seed) {
  return static_cast<uint8_t>((index * 131) ^ (index >> 9) ^ seed);
}

void fill_pattern(uint8_t* bytes, size_t size, uint8_t seed) {
  for (size_t i = 0; i < size; ++i) bytes[i] = pattern_byte(i, seed);
}

bool has_pattern(const uint8_t* bytes, size_t size, uint8_t seed) {
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != pattern_byte(i, seed)) return false;
  }
  return true;
}

uint64_t fnv1a(const uint8_t* bytes, size_t size) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  return hash;
}

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

// A redirected allocation is padded to the granularity; the whole padded
// range must be usable (a partial cuMemSetAccess would fault here).
void check_padded_range(const std::string& label, void* pointer) {
  DriverMapping mapping;
  bool redirected = find_driver_mapping(pointer, mapping);
  report(label + ".redirected", redirected ? "1" : "0");
  if (!redirected) return;
  auto* bytes = reinterpret_cast<uint8_t*>(mapping.base);
  fill_pattern(bytes, mapping.size, 0x5a);
  report(label + ".mapping_base", hex(mapping.base));
  report(label + ".mapping_size", std::to_string(mapping.size));
  report(label + ".padded_ok", has_pattern(bytes, mapping.size, 0x5a) ? "1" : "0");
  report(label + ".host_access", std::to_string(host_access_granted(pointer)));
}

// Writes and reads the buffer through the runtime and the CPU; prints what
// must be the same wherever the memory came from.
void exercise_buffer(const std::string& label, void* pointer, size_t size, uint8_t seed) {
  auto* bytes = static_cast<uint8_t*>(pointer);
  check_padded_range(label, pointer);
  cudaError_t memset_result = cudaMemset(pointer, 0xab, size);
  bool memset_ok = bytes[0] == 0xab && bytes[size - 1] == 0xab;
  std::printf("%s cudaMemset=%s ok=%d\n", label.c_str(), name_of(memset_result), memset_ok);
  fill_pattern(bytes, size, seed);
  std::printf("%s size=%zu pattern_ok=%d checksum=%016" PRIx64 "\n", label.c_str(), size,
              has_pattern(bytes, size, seed), fnv1a(bytes, size));
}

using Allocator = std::function<cudaError_t(void**, size_t)>;

cudaError_t managed_global(void** pointer, size_t size) {
  return cudaMallocManaged(pointer, size, cudaMemAttachGlobal);
}

cudaError_t plain_malloc(void** pointer, size_t size) { return cudaMalloc(pointer, size); }

// Allocates, reports where it came from, and exercises it; nullptr on failure.
void* allocate_and_use(const std::string& label, const Allocator& allocate, size_t size,
                       uint8_t seed) {
  void* pointer = nullptr;
  cudaError_t result = allocate(&pointer, size);
  std::printf("%s alloc(%zu)=%s\n", label.c_str(), size, name_of(result));
  if (result != cudaSuccess || pointer == nullptr) return nullptr;
  report(label + ".addr", hex(reinterpret_cast<uintptr_t>(pointer)));
  report_counts(label + ".after_alloc");
  exercise_buffer(label, pointer, size, seed);
  return pointer;
}

void free_and_report(const std::string& label, void* pointer) {
  cudaError_t result = cudaFree(pointer);
  std::printf("%s cudaFree=%s\n", label.c_str(), name_of(result));
  report_counts(label + ".after_free");
}

// ---- scenarios ----

int scenario_malloc() {
  void* pointer = allocate_and_use("malloc", plain_malloc, kMallocSize, 1);
  if (pointer == nullptr) return 1;
  free_and_report("malloc", pointer);
  print_final_counts();
  return 0;
}

int scenario_managed() {
  void* pointer = allocate_and_use("managed", managed_global, kManagedSize, 2);
  if (pointer == nullptr) return 1;
  free_and_report("managed", pointer);
  print_final_counts();
  return 0;
}

// Two live allocations at once, copied between with cudaMemcpy.
int scenario_both() {
  void* large = allocate_and_use("malloc", plain_malloc, kMallocSize, 3);
  void* small = allocate_and_use("managed", managed_global, kSmallSize, 4);
  if (large == nullptr || small == nullptr) return 1;
  cudaError_t copy = cudaMemcpy(small, large, kSmallSize, cudaMemcpyDeviceToDevice);
  std::printf("cudaMemcpy=%s checksum=%016" PRIx64 "\n", name_of(copy),
              fnv1a(static_cast<uint8_t*>(small), kSmallSize));
  free_and_report("managed", small);
  free_and_report("malloc", large);
  print_final_counts();
  return 0;
}

// Pointers libegm.so never handed out go to the real cudaFree.
int scenario_free_unknown() {
  int on_stack = 0;
  std::printf("cudaFree(nullptr)=%s\n", name_of(cudaFree(nullptr)));
  std::printf("cudaFree(0x1000)=%s\n", name_of(cudaFree(reinterpret_cast<void*>(0x1000))));
  std::printf("cudaFree(stack)=%s\n", name_of(cudaFree(&on_stack)));
  print_final_counts();
  return 0;
}

// An interior pointer and a second free of the same pointer are errors.
int scenario_free_twice() {
  void* pointer = allocate_and_use("malloc", plain_malloc, kMallocSize, 5);
  if (pointer == nullptr) return 1;
  void* interior = static_cast<uint8_t*>(pointer) + 64;
  std::printf("cudaFree(interior)=%s\n", name_of(cudaFree(interior)));
  free_and_report("malloc", pointer);
  std::printf("cudaFree(again)=%s\n", name_of(cudaFree(pointer)));
  print_final_counts();
  return 0;
}

// Memory from the runtime itself (bypassing the shim), freed through the
// interposed cudaFree.
int scenario_runtime_pointer() {
  // Looked up in the runtime library itself: RTLD_DEFAULT would find libegm.so's.
  void* runtime = dlopen("libcudart.so.13", RTLD_LAZY | RTLD_NOLOAD);
  if (runtime == nullptr) return 1;
  auto runtime_malloc =
      reinterpret_cast<cudaError_t (*)(void**, size_t)>(dlsym(runtime, "cudaMalloc"));
  dlclose(runtime);
  if (runtime_malloc == nullptr) return 1;
  void* pointer = allocate_and_use("runtime", runtime_malloc, 4096, 6);
  if (pointer == nullptr) return 1;
  free_and_report("runtime", pointer);
  print_final_counts();
  return 0;
}

// Requests the shim must leave to the runtime untouched.
int scenario_edge() {
  void* pointer = reinterpret_cast<void*>(0x1);
  cudaError_t zero = cudaMalloc(&pointer, 0);
  std::printf("cudaMalloc(0)=%s pointer_null=%d\n", name_of(zero), pointer == nullptr);
  std::printf("cudaMalloc(null out)=%s\n", name_of(cudaMalloc(nullptr, 4096)));
  void* managed = nullptr;
  std::printf("cudaMallocManaged(bad flags)=%s\n",
              name_of(cudaMallocManaged(&managed, 4096, 0x10)));
  print_final_counts();
  return 0;
}

uint64_t thread_rounds(int thread) {
  uint64_t combined = 0;
  for (int round = 0; round < kRoundsPerThread; ++round) {
    size_t size = kMiB + static_cast<size_t>(thread * 4096 + round * 17);
    void* pointer = nullptr;
    if (cudaMalloc(&pointer, size) != cudaSuccess) return 0;
    auto* bytes = static_cast<uint8_t*>(pointer);
    fill_pattern(bytes, size, static_cast<uint8_t>(thread * 16 + round));
    combined ^= fnv1a(bytes, size) + static_cast<uint64_t>(round);
    if (cudaFree(pointer) != cudaSuccess) return 0;
  }
  return combined;
}

// Concurrent allocate/free from several threads.
int scenario_threads() {
  std::vector<uint64_t> results(kThreadCount);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreadCount; ++t) {
    threads.emplace_back([t, &results] { results[t] = thread_rounds(t); });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreadCount; ++t) {
    std::printf("thread %d checksum=%016" PRIx64 "\n", t, results[t]);
  }
  print_final_counts();
  return 0;
}

// Leaves an allocation live at exit (the shim's summary must report it).
int scenario_leak() {
  void* pointer = allocate_and_use("malloc", plain_malloc, kMallocSize, 7);
  return pointer == nullptr ? 1 : 0;
}

// Touches no CUDA allocation call at all.
int scenario_none() {
  std::printf("no allocations\n");
  return 0;
}

const std::map<std::string, std::function<int()>>& scenarios() {
  static const auto* table = new std::map<std::string, std::function<int()>>{
      {"malloc", scenario_malloc},
      {"managed", scenario_managed},
      {"both", scenario_both},
      {"free-unknown", scenario_free_unknown},
      {"free-twice", scenario_free_twice},
      {"runtime-pointer", scenario_runtime_pointer},
      {"edge", scenario_edge},
      {"threads", scenario_threads},
      {"leak", scenario_leak},
      {"none", scenario_none},
  };
  return *table;
}

// A fault (memory without granted access) becomes a clear message and exit code.
void on_segfault(int, siginfo_t* info, void*) {
  char message[96];
  int length =
      std::snprintf(message, sizeof message, "alloc_program: SIGSEGV at %p\n", info->si_addr);
  if (length > 0) (void)!write(STDERR_FILENO, message, static_cast<size_t>(length));
  _exit(kSegfaultExitCode);
}

void install_segfault_handler() {
  struct sigaction action = {};
  action.sa_sigaction = on_segfault;
  action.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &action, nullptr);
  sigaction(SIGBUS, &action, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  install_segfault_handler();
  return test_program::run_scenario("alloc_program", scenarios(), argc, argv);
}
