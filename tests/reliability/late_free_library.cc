// A library that frees CUDA memory in its own destructor, as some frameworks
// do at exit: the shim's exit summary must not call that memory a leak.
#include <cuda_runtime_api.h>
#include <unistd.h>

#include <string>

namespace {

void* freed_at_unload = nullptr;

__attribute__((destructor)) void free_at_unload() {
  if (freed_at_unload == nullptr) return;
  cudaError_t result = cudaFree(freed_at_unload);
  std::string line = std::string("library destructor cudaFree=") +
                     (result == cudaSuccess ? "cudaSuccess" : "failed") + "\n";
  ssize_t ignored = write(STDOUT_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void late_free_at_unload(void* pointer) {
  freed_at_unload = pointer;
}
