#include "shim/core/launch_params.h"

#include <cstring>

namespace egm {
namespace {

constexpr size_t kMaxParamBytes = size_t{64} << 10;  // beyond any launch's parameter space
constexpr int kSuccess = 0;

// nullopt-free: `known` false when the walk fails before its natural end.
ParamLayout walk(void* handle, ParamInfoQuery query) {
  ParamLayout layout;
  for (size_t index = 0; index <= kMaxKernelParams; ++index) {
    size_t offset = 0, size = 0;
    int result = query(handle, index, &offset, &size);
    if (result == kParamInfoPastTheEnd) {
      layout.known = true;
      return layout;
    }
    if (result != kSuccess || size == 0 || size > kMaxParamBytes || offset > kMaxParamBytes ||
        index == kMaxKernelParams) {
      layout.params.clear();
      return layout;
    }
    layout.params.push_back({offset, size});
  }
  return layout;
}

bool first_answers(void* handle, ParamInfoQuery query) {
  if (query == nullptr) return false;
  size_t offset = 0, size = 0;
  int result = query(handle, 0, &offset, &size);
  return result == kSuccess || result == kParamInfoPastTheEnd;
}

}  // namespace

ParamLayout query_layout(void* handle, ParamInfoQuery by_function, ParamInfoQuery by_kernel) {
  if (first_answers(handle, by_function)) return walk(handle, by_function);
  if (!first_answers(handle, by_kernel)) return {};
  ParamLayout layout = walk(handle, by_kernel);
  layout.from_kernel = true;
  return layout;
}

bool layout_still_holds(void* handle, const ParamLayout& layout, ParamInfoQuery by_function,
                        ParamInfoQuery by_kernel) {
  if (!layout.known) return true;  // unknown stays unknown: never staged either way
  ParamInfoQuery query = layout.from_kernel ? by_kernel : by_function;
  if (query == nullptr) return false;
  size_t count = layout.params.size();
  size_t offset = 0, size = 0;
  if (count > 0) {
    if (query(handle, count - 1, &offset, &size) != kSuccess) return false;
    if (offset != layout.params[count - 1].offset || size != layout.params[count - 1].size) {
      return false;
    }
  }
  return query(handle, count, &offset, &size) == kParamInfoPastTheEnd;
}

std::shared_ptr<const ParamLayout> LayoutCache::layout_of(void* handle) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = layouts_.find(handle);
    if (found != layouts_.end()) {
      std::shared_ptr<const ParamLayout> cached = found->second;
      if (layout_still_holds(handle, *cached, by_function_, by_kernel_)) return cached;
    }
  }
  // Asked outside the lock: the driver's answers take a while.
  auto fresh = std::make_shared<const ParamLayout>(query_layout(handle, by_function_, by_kernel_));
  std::lock_guard<std::mutex> lock(mutex_);
  layouts_[handle] = fresh;
  return fresh;
}

size_t LayoutCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return layouts_.size();
}

const unsigned char* ParamValues::bytes_of(const ParamLayout& layout, size_t index) const {
  const ParamSlot& slot = layout.params[index];
  if (kernel_params != nullptr) return static_cast<const unsigned char*>(kernel_params[index]);
  if (buffer == nullptr || slot.offset > buffer_size || slot.size > buffer_size - slot.offset) {
    return nullptr;
  }
  return buffer + slot.offset;
}

bool packed_buffer_of(void** extra, const unsigned char** buffer, size_t* size) {
  // CU_LAUNCH_PARAM_END 0x00, _BUFFER_POINTER 0x01, _BUFFER_SIZE 0x02
  // (cuda.h), keys and values alternating; at most a handful of pairs.
  const void* pointer = nullptr;
  const size_t* size_at = nullptr;
  for (size_t i = 0; i < 64; i += 2) {
    uintptr_t key = reinterpret_cast<uintptr_t>(extra[i]);
    if (key == 0x00) {
      if (pointer == nullptr || size_at == nullptr) return false;
      *buffer = static_cast<const unsigned char*>(pointer);
      *size = *size_at;
      return true;
    }
    if (key == 0x01) {
      pointer = extra[i + 1];
    } else if (key == 0x02) {
      size_at = static_cast<const size_t*>(extra[i + 1]);
    } else {
      return false;
    }
  }
  return false;
}

bool param_values_of(void** kernel_params, void** extra, ParamValues* values) {
  values->kernel_params = kernel_params;
  if (kernel_params != nullptr) return extra == nullptr;  // both: the driver's error
  return extra != nullptr && packed_buffer_of(extra, &values->buffer, &values->buffer_size);
}

uint64_t load_word(const unsigned char* at) {
  uint64_t value = 0;
  std::memcpy(&value, at, sizeof value);  // a parameter's bytes need not be aligned
  return value;
}

void store_word(unsigned char* at, uint64_t value) { std::memcpy(at, &value, sizeof value); }

}  // namespace egm
