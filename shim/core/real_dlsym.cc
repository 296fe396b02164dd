#include "shim/core/real_dlsym.h"

#include <dlfcn.h>

namespace egm {

DlsymFunction real_dlsym() {
  // dlvsym is not overridden; dlsym moved into libc at GLIBC_2.34 (2.2.5 before).
  static DlsymFunction real = [] {
    void* found = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (found == nullptr) found = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    return reinterpret_cast<DlsymFunction>(found);
  }();
  return real;
}

}  // namespace egm
