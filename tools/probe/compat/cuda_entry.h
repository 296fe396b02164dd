// A CUDA entry point found by name in the process's global scope, where a
// program's own call would bind too (LD_PRELOAD first, then libcudart /
// libcuda). A runtime that lacks it (the CPU test doubles lack many) makes
// the check that needs it report SKIP instead of failing to load.
#pragma once

#include <dlfcn.h>

#include <initializer_list>
#include <string>

namespace egm::compat {

template <typename Function>
class Entry;

template <typename Result, typename... Args>
class Entry<Result(Args...)> {
 public:
  // `name` is the exported symbol (cuMemAlloc_v2, not the header's macro).
  explicit Entry(const char* name)
      : name_(name), function_(reinterpret_cast<Result (*)(Args...)>(dlsym(RTLD_DEFAULT, name))) {}

  Result operator()(Args... args) const { return function_(args...); }
  bool present() const { return function_ != nullptr; }
  const char* name() const { return name_; }

 private:
  const char* name_;
  Result (*function_)(Args...);
};

// The names of the absent entries among `present`/`names`, space separated;
// empty when all are there.
inline std::string missing_entries(std::initializer_list<std::pair<bool, const char*>> entries) {
  std::string missing;
  for (const auto& [present, name] : entries) {
    if (!present) missing += (missing.empty() ? "" : " ") + std::string(name);
  }
  return missing;
}

}  // namespace egm::compat
