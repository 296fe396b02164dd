// Preloaded into a program that runs on the fake libcuda.so.1: at exit,
// prints to stderr what the fake still holds, so that a test can check that
// nothing leaked:
//   fake-cuda-live handles=0 memory_objects=0 reservations=0 mappings=0 primary_contexts=0
// (-1 for a count the fake does not export.)
#include <dlfcn.h>

#include <cstdio>

namespace {

int live_count(void* fake, const char* function) {
  auto count = reinterpret_cast<int (*)()>(dlsym(fake, function));
  return count ? count() : -1;
}

// The fake is dlopen'ed RTLD_LOCAL by the program, so it is found by soname.
__attribute__((destructor)) void report_live_objects() {
  void* fake = dlopen("libcuda.so.1", RTLD_NOLOAD | RTLD_LAZY);
  if (fake == nullptr) {
    std::fprintf(stderr, "fake-cuda-live not-loaded\n");
    return;
  }
  std::fprintf(
      stderr,
      "fake-cuda-live handles=%d memory_objects=%d reservations=%d mappings=%d "
      "primary_contexts=%d\n",
      live_count(fake, "fake_cuda_live_handles"), live_count(fake, "fake_cuda_live_memory_objects"),
      live_count(fake, "fake_cuda_live_reservations"), live_count(fake, "fake_cuda_live_mappings"),
      live_count(fake, "fake_cuda_live_primary_context_references"));
}

}  // namespace
