#include "shim/core/caller_library.h"

#include <dlfcn.h>

#include <array>
#include <string_view>

namespace egm {

bool called_from_communication_library(const void* return_address) {
  Dl_info info{};
  if (return_address == nullptr || dladdr(return_address, &info) == 0 ||
      info.dli_fname == nullptr) {
    return false;
  }
  std::string_view path = info.dli_fname;
  std::string_view file = path.substr(path.find_last_of('/') + 1);
  constexpr std::array<std::string_view, 3> kPrefixes = {"libnccl", "librccl", "libnvshmem"};
  for (std::string_view prefix : kPrefixes) {
    if (file.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace egm
