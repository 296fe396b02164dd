// A program that uses libegm.so as PyTorch's pluggable allocator does: it
// loads the library by path (dlopen RTLD_LOCAL, as ctypes does), looks up
// egm_malloc / egm_free and calls them, while making its own cudaMalloc
// calls through the (fake) runtime. `pluggable_program SCENARIO`, the library
// path in $PLUGGABLE_LIB; the KEY=VALUE report as in alloc_program.
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <sys/types.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

namespace {

using test_program::address_of;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kEgmSize = 3 * kMiB + 123;  // padded to 4 MiB by the 2 MiB granularity
constexpr size_t kOwnSize = 5 * kMiB;

using MallocFn = void* (*)(ssize_t, int, cudaStream_t);
using FreeFn = void (*)(void*, ssize_t, int, cudaStream_t);
using SetNodeFn = int (*)(int);
using StatsFn = size_t (*)(char*, size_t);

struct Library {
  void* handle = nullptr;
  MallocFn malloc = nullptr;
  FreeFn free = nullptr;
  SetNodeFn set_node = nullptr;
  StatsFn stats = nullptr;
};

bool load(Library& library) {
  const char* path = std::getenv("PLUGGABLE_LIB");
  library.handle = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : nullptr;
  if (library.handle == nullptr) {
    std::printf("dlopen failed: %s\n", dlerror());
    return false;
  }
  library.malloc = reinterpret_cast<MallocFn>(dlsym(library.handle, "egm_malloc"));
  library.free = reinterpret_cast<FreeFn>(dlsym(library.handle, "egm_free"));
  library.set_node = reinterpret_cast<SetNodeFn>(dlsym(library.handle, "egm_set_node"));
  library.stats = reinterpret_cast<StatsFn>(dlsym(library.handle, "egm_stats_json"));
  // Preloaded, dlopen by path must give the preloaded copy, which the global
  // scope finds; loaded by path, the global scope does not know the library.
  void* global = dlsym(RTLD_DEFAULT, "egm_malloc");
  report("global_egm_malloc", global == nullptr ? "none"
                              : global == reinterpret_cast<void*>(library.malloc) ? "same"
                                                                                  : "other");
  return library.malloc && library.free && library.set_node && library.stats;
}

// The fake driver is dlopen'ed RTLD_LOCAL by libegm.so: look in it directly.
void* driver_symbol(const char* name) {
  void* handle = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* symbol = dlsym(handle, name);
  dlclose(handle);
  return symbol;
}

int driver_count(const char* name) {
  auto count = reinterpret_cast<int (*)()>(driver_symbol(name));
  return count ? count() : 0;
}

void report_counts(const std::string& prefix) {
  report(prefix + ".cuda_mappings", std::to_string(driver_count("fake_cuda_live_mappings")));
  report(prefix + ".cuda_handles", std::to_string(driver_count("fake_cuda_live_handles")));
  report(prefix + ".cudart_allocations", std::to_string(fake_cudart_live_allocations()));
}

size_t mapping_size_of(const void* pointer) {
  auto mapping_of =
      reinterpret_cast<int (*)(const void*, uintptr_t*, size_t*)>(driver_symbol("fake_cuda_mapping_of"));
  uintptr_t base = 0;
  size_t size = 0;
  return mapping_of && mapping_of(pointer, &base, &size) == 1 ? size : 0;
}

std::string stats_of(const Library& library) {
  size_t length = library.stats(nullptr, 0);
  std::string text(length + 1, '\0');
  size_t again = library.stats(text.data(), text.size());
  text.resize(again <= length ? again : 0);
  return text;
}

// The program's own allocation: the runtime's, unless the shim is preloaded.
void* own_allocation(const std::string& label) {
  void* own = nullptr;
  cudaError_t result = cudaMalloc(&own, kOwnSize);
  std::printf("cudaMalloc=%s\n", cudaGetErrorName(result));
  report(label + ".in_driver_mapping", mapping_size_of(own) != 0 ? "1" : "0");
  report_counts(label + ".after_own");
  return own;
}

// egm_malloc / egm_free with the program's own allocation live beside them.
int use() {
  Library library;
  if (!load(library)) return 1;
  void* own = own_allocation("own");
  void* pointer = library.malloc(static_cast<ssize_t>(kEgmSize), 0, nullptr);
  std::printf("egm_malloc %s\n", pointer ? "ok" : "null");
  if (pointer == nullptr) return 1;
  report("egm.addr", address_of(pointer));
  report("egm.mapping_size", std::to_string(mapping_size_of(pointer)));
  auto host_access = reinterpret_cast<int (*)(const void*)>(
      driver_symbol("fake_cuda_host_access_granted"));
  report("egm.host_access", std::to_string(host_access ? host_access(pointer) : -1));
  std::memset(pointer, 0x5a, kEgmSize);  // the CPU reaches every byte
  report_counts("egm.after_alloc");
  report("stats.live", stats_of(library));
  library.free(pointer, static_cast<ssize_t>(kEgmSize), 0, nullptr);
  report_counts("egm.after_free");
  report("stats.freed", stats_of(library));
  std::printf("cudaFree=%s\n", cudaGetErrorName(cudaFree(own)));
  report_counts("final");
  return 0;
}

// Loaded by path and never used: no shim, no log, no summary.
int idle() {
  Library library;
  if (!load(library)) return 1;
  void* own = own_allocation("own");
  std::printf("cudaFree=%s\n", cudaGetErrorName(cudaFree(own)));
  return 0;
}

// Node choice and EGM_NODE_LIMIT: egm_malloc past the cap returns null.
int limits() {
  Library library;
  if (!load(library)) return 1;
  report("set_node.0", std::to_string(library.set_node(0)));
  report("set_node.7", std::to_string(library.set_node(7)));
  report("set_node.-2", std::to_string(library.set_node(-2)));
  void* first = library.malloc(static_cast<ssize_t>(6 * kMiB), 0, nullptr);
  void* second = library.malloc(static_cast<ssize_t>(6 * kMiB), 0, nullptr);
  void* empty = library.malloc(0, 0, nullptr);
  void* negative = library.malloc(-1, 0, nullptr);
  void* huge = library.malloc(SSIZE_MAX, 0, nullptr);
  report("huge", huge ? "ok" : "null");
  report("first", first ? "ok" : "null");
  report("second", second ? "ok" : "null");
  report("empty", empty ? "ok" : "null");
  report("negative", negative ? "ok" : "null");
  library.free(nullptr, 0, 0, nullptr);
  int not_ours = 0;
  library.free(&not_ours, 4, 0, nullptr);  // not egm_malloc's: left alone
  if (first) library.free(first, static_cast<ssize_t>(6 * kMiB), 0, nullptr);
  if (second) library.free(second, static_cast<ssize_t>(6 * kMiB), 0, nullptr);
  report_counts("final");
  return 0;
}

// Hostile calls: bad devices, interior and repeated frees, buffers too small
// for the JSON, extreme nodes. Nothing crashes; the memory stays usable.
int hostile() {
  Library library;
  if (!load(library)) return 1;
  report("device_minus_1", library.malloc(4 << 20, -1, nullptr) ? "ok" : "null");
  report("device_999", library.malloc(4 << 20, 999, nullptr) ? "ok" : "null");
  report("set_node.int_min", std::to_string(library.set_node(INT_MIN)));
  report("set_node.int_max", std::to_string(library.set_node(INT_MAX)));
  auto* pointer = static_cast<char*>(library.malloc(4 << 20, 0, nullptr));
  report("good", pointer ? "ok" : "null");
  if (pointer == nullptr) return 1;
  library.free(pointer + 4096, 4 << 20, 0, nullptr);  // interior: left alone
  std::memset(pointer, 0x33, 4 << 20);               // still mapped
  report("after_interior_free", pointer[(4 << 20) - 1] == 0x33 ? "mapped" : "lost");
  size_t length = library.stats(nullptr, 0);
  std::string small(length, 'x');  // one byte short of the NUL
  size_t told = library.stats(small.data(), small.size());
  report("stats_short_buffer", told == length && small == std::string(length, 'x') ? "untouched"
                                                                                  : "written");
  char one = 'x';
  report("stats_one_byte", library.stats(&one, 1) == length && one == 'x' ? "untouched" : "written");
  library.free(pointer, 4 << 20, 0, nullptr);
  library.free(pointer, 4 << 20, 0, nullptr);  // again: left alone
  report_counts("final");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return test_program::run_scenario("pluggable_program",
                                    {{"use", use}, {"idle", idle}, {"limits", limits}, {"hostile", hostile}}, argc, argv);
}
