// A library that passes egm-run's shim check (an ELF shared object exporting
// cudaMalloc) but does nothing: the exec tests preload it instead of
// libegm.so, so that they do not depend on what the shim does in a program.
#include <cstddef>

extern "C" __attribute__((visibility("default"))) int cudaMalloc(void** pointer, size_t) {
  if (pointer != nullptr) *pointer = nullptr;
  return 2;  // cudaErrorMemoryAllocation: never called by the programs the tests run
}
