#include "shim/core/real_runtime.h"

#include <dlfcn.h>
#include <link.h>

#include <cstring>

#include "shim/core/real_dlsym.h"

namespace egm {
namespace {

int remember_runtime_path(dl_phdr_info* info, size_t, void* out) {
  const char* name = info->dlpi_name;
  if (name != nullptr && std::strstr(name, "/libcudart.so") != nullptr) {
    *static_cast<const char**>(out) = name;
    return 1;
  }
  return 0;
}

// A libcudart loaded with RTLD_LOCAL is invisible to RTLD_NEXT; find it by
// name among the loaded objects instead.
const char* loaded_runtime_path() {
  const char* path = nullptr;
  dl_iterate_phdr(remember_runtime_path, &path);
  return path;
}

}  // namespace

void* find_real_runtime_symbol(const char* name) {
  if (void* symbol = real_dlsym()(RTLD_NEXT, name)) return symbol;
  const char* path = loaded_runtime_path();
  if (path == nullptr) return nullptr;
  void* handle = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* symbol = real_dlsym()(handle, name);
  dlclose(handle);  // NOLOAD took a reference; the library stays loaded
  return symbol;
}

bool dynamic_runtime_loaded() { return loaded_runtime_path() != nullptr; }

RealRuntime& real_runtime() {
  static RealRuntime* runtime = new RealRuntime();  // never destroyed: used at exit
  return *runtime;
}

}  // namespace egm
