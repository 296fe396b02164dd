#include "shim/core/real_dlsym.h"

#include <dlfcn.h>

namespace egm {
namespace {

// dlvsym is not overridden, and asks for glibc's versioned definition, so it
// can never return the shim's own dlsym. dlsym moved into libc at
// GLIBC_2.34 (GLIBC_2.2.5 before). RTLD_DEFAULT as well as RTLD_NEXT: very
// early callers (a sanitizer runtime initializing before everything else)
// may find nothing "next".
// Plain arrays and index loops: no inline library code that would be
// instrumented.
EGM_NOT_SANITIZED DlsymFunction find_real_dlsym() {
  const char* const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5"};
  void* const scopes[] = {RTLD_NEXT, RTLD_DEFAULT};
  for (int v = 0; v < 2; ++v) {
    for (int s = 0; s < 2; ++s) {
      if (void* found = dlvsym(scopes[s], "dlsym", versions[v])) {
        return reinterpret_cast<DlsymFunction>(found);
      }
    }
  }
  return nullptr;
}

}  // namespace

// A plain pointer with atomic builtins: std::atomic's inline members would
// be instrumented.
DlsymFunction cached_real_dlsym = nullptr;

EGM_NOT_SANITIZED DlsymFunction real_dlsym() {
  DlsymFunction found = __atomic_load_n(&cached_real_dlsym, __ATOMIC_ACQUIRE);
  if (found == nullptr) {
    found = find_real_dlsym();
    __atomic_store_n(&cached_real_dlsym, found, __ATOMIC_RELEASE);
  }
  return found;
}

}  // namespace egm
