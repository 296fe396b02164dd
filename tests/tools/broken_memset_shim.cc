// A stand-in for a shim that changes results: cudaMemset writes value + 1.
// egm-probe --selftest must report the memset check as FAIL with it.
#include <dlfcn.h>

#include <cstddef>

extern "C" __attribute__((visibility("default"))) int cudaMemset(void* pointer, int value,
                                                                 size_t count) {
  using Memset = int (*)(void*, int, size_t);
  static Memset real = reinterpret_cast<Memset>(dlsym(RTLD_NEXT, "cudaMemset"));
  return real ? real(pointer, value + 1, count) : 1;
}
