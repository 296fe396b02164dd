// Checks that dlsym(RTLD_NEXT, ...) keeps its meaning under libegm.so, which
// overrides dlsym: glibc finds "next" relative to the caller's return
// address, so an interposer that is not a tail call would search from
// libegm.so instead of from the real caller.
//
// Prints, for each lookup, the object the symbol was found in; the test
// compares it with the search order (executable, LD_PRELOAD libraries, then
// DT_NEEDED: libnext_probe_a.so, libnext_probe_b.so, libcudart.so.13).
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>

extern "C" const char* next_probe_name();
extern "C" const char* next_probe_name_after_a();

namespace {

// The file name (without directories) of the object holding `symbol`.
const char* object_of(void* symbol) {
  Dl_info info;
  if (symbol == nullptr || dladdr(symbol, &info) == 0 || info.dli_fname == nullptr) return "none";
  const char* slash = std::strrchr(info.dli_fname, '/');
  return slash ? slash + 1 : info.dli_fname;
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("next_probe_name=%s\n", next_probe_name());
  std::printf("from_a_next(next_probe_name)=%s\n", next_probe_name_after_a());
  void* next_malloc = dlsym(RTLD_NEXT, "cudaMalloc");
  std::printf("from_main_next(cudaMalloc) in %s\n", object_of(next_malloc));
  std::printf("from_main_default(cudaMalloc) in %s\n",
              object_of(dlsym(RTLD_DEFAULT, "cudaMalloc")));
  std::printf("from_main_next(cudaMalloc) is_linked_one=%d\n",
              next_malloc == reinterpret_cast<void*>(&cudaMalloc));
  std::printf("from_main_next(next_probe_name)=%s\n",
              reinterpret_cast<const char* (*)()>(dlsym(RTLD_NEXT, "next_probe_name"))());
  return 0;
}
