// egm-compat-checks: the program `egm-probe --selftest` runs twice, without
// and with libegm.so, and compares line by line. Each check prints
//   check <name> <result>
// where the result holds error names, values and checksums, never addresses.
// Kernel checks come from libegm_compat_kernels.so beside this binary; a
// CUDA runtime that cannot run kernels (the CPU test doubles) cannot load it,
// and those checks print "SKIP-NO-DEVICE <why>".
#include <dlfcn.h>
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tools/probe/compat/host_checks.h"

namespace {

constexpr const char* kKernelLibrary = "libegm_compat_kernels.so";

std::string own_directory() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return ".";
  std::string exe(path, static_cast<size_t>(length));
  return exe.substr(0, exe.rfind('/'));
}

void print_check(const char* name, const std::string& result) {
  std::printf("check %s %s\n", name, result.c_str());
  std::fflush(stdout);  // a crash later keeps the lines already printed
}

using KernelCheck = void (*)(char*, size_t);

void run_kernel_checks() {
  const std::pair<const char*, const char*> checks[] = {
      {"device-atomics", "egm_compat_atomics"},
      {"texture.pitched-2d", "egm_compat_texture"},
  };
  std::string path = own_directory() + "/" + kKernelLibrary;
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string why = library ? "" : dlerror();
  for (const auto& [name, symbol] : checks) {
    auto check = library ? reinterpret_cast<KernelCheck>(dlsym(library, symbol)) : nullptr;
    if (check == nullptr) {
      // The reason names the first symbol the runtime lacks, not a path.
      std::string reason = why.empty() ? std::string(symbol) + " not found" : why;
      size_t colon = reason.find(": ");
      if (colon != std::string::npos) reason = reason.substr(colon + 2);
      print_check(name, "SKIP-NO-DEVICE this CUDA runtime cannot run kernels (" + reason + ")");
      continue;
    }
    char result[512] = {};
    check(result, sizeof result);
    print_check(name, result);
  }
}

}  // namespace

int main() {
  for (const auto& [name, check] : egm::compat::host_checks()) print_check(name, check());
  run_kernel_checks();
  std::printf("done\n");
  return 0;
}
