// The C entry points of libegm_compat_kernels.so, found by dlsym in
// egm-compat-checks. The result is copied into the caller's buffer.
#include <cstddef>
#include <cstring>
#include <string>

#include "tools/probe/compat/compat_kernels.h"

namespace {

void copy_out(const std::string& result, char* out, size_t size) {
  if (size == 0) return;
  size_t length = result.size() < size - 1 ? result.size() : size - 1;
  std::memcpy(out, result.data(), length);
  out[length] = '\0';
}

}  // namespace

extern "C" __attribute__((visibility("default"))) void egm_compat_atomics(char* out, size_t size) {
  copy_out(egm::compat::atomics_check(), out, size);
}

extern "C" __attribute__((visibility("default"))) void egm_compat_texture(char* out, size_t size) {
  copy_out(egm::compat::texture_check(), out, size);
}
