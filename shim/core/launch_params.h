// A kernel's parameters as staging sees them (shim/core/stager.h): the
// layout the driver reports for a function handle, the 8-byte words of the
// parameter values a launch passes, and a private copy of those values with
// some words rewritten. Pure logic: the driver's layout queries are injected.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace egm {

struct ParamSlot {
  size_t offset = 0;  // in the parameter buffer (the `extra` form's layout)
  size_t size = 0;
};

// Empty `params` with known = true: a kernel without parameters.
struct ParamLayout {
  bool known = false;
  bool from_kernel = false;  // answered by cuKernelGetParamInfo (a CUkernel handle)
  std::vector<ParamSlot> params;
};

// The driver's cuFuncGetParamInfo / cuKernelGetParamInfo for one handle:
// 0 (CUDA_SUCCESS) with the parameter's offset and size, or an error.
using ParamInfoQuery = int (*)(void* handle, size_t index, size_t* offset, size_t* size);

inline constexpr size_t kMaxKernelParams = 4096;
inline constexpr int kParamInfoPastTheEnd = 1;  // CUDA_ERROR_INVALID_VALUE

// Asks `by_function` for parameter 0, 1, ... until it fails past the last
// (CUDA_ERROR_INVALID_VALUE). If it fails at 0 with another error, the
// handle may be a CUkernel (the runtime launches those cast to CUfunction):
// `by_kernel` is asked the same way. Unknown when neither answers, when an
// answer is absurd (a size of 0, a parameter past 64 KiB) or past 4096
// parameters. A null query counts as failing.
ParamLayout query_layout(void* handle, ParamInfoQuery by_function, ParamInfoQuery by_kernel);

// Whether `layout` still describes `handle` (a module unloaded and another
// loaded may reuse a handle's value): its last parameter is where it was
// and there is none after it. Two queries instead of a full walk.
bool layout_still_holds(void* handle, const ParamLayout& layout, ParamInfoQuery by_function,
                        ParamInfoQuery by_kernel);

// Layouts by handle, failures included (a handle whose layout is unknown is
// never staged). Thread-safe.
class LayoutCache {
 public:
  LayoutCache(ParamInfoQuery by_function, ParamInfoQuery by_kernel)
      : by_function_(by_function), by_kernel_(by_kernel) {}
  // The cached layout, checked with layout_still_holds; asked afresh when
  // new or no longer holding.
  std::shared_ptr<const ParamLayout> layout_of(void* handle);
  size_t size() const;

 private:
  ParamInfoQuery by_function_;
  ParamInfoQuery by_kernel_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, std::shared_ptr<const ParamLayout>> layouts_;
};

// One 8-byte word of a launch's parameter values.
struct ParamWord {
  size_t param = 0;   // parameter index
  size_t offset = 0;  // from the parameter's start, a multiple of 8
  uint64_t value = 0;
};

// Where a launch's parameter values are: kernelParams (an array of pointers,
// one per parameter) or the `extra` form's packed buffer (layout offsets).
struct ParamValues {
  void** kernel_params = nullptr;
  const unsigned char* buffer = nullptr;  // CU_LAUNCH_PARAM_BUFFER_POINTER
  size_t buffer_size = 0;
  // The bytes of parameter `index`, or nullptr (outside the buffer).
  const unsigned char* bytes_of(const ParamLayout& layout, size_t index) const;
};

// Every 8-byte-aligned 8-byte word inside every parameter (offsets relative
// to the parameter's start: parameters by value can be structs of pointers)
// for which `keep(value)` is true.
template <typename Keep>
std::vector<ParamWord> candidate_words(const ParamLayout& layout, const ParamValues& values,
                                       Keep keep);

// The `extra` array's packed buffer and its size; false when `extra` is not
// a well-formed CU_LAUNCH_PARAM_BUFFER_POINTER/_SIZE/_END list.
bool packed_buffer_of(void** extra, const unsigned char** buffer, size_t* size);

// Where the launch's values are: kernelParams, or else `extra`'s packed
// buffer. False when neither can be read (the driver then answers alone).
bool param_values_of(void** kernel_params, void** extra, ParamValues* values);

// A private copy of the launch's parameters with chosen words replaced: the
// launch gets params() and extra(); the program's own arrays, buffer and
// values are never written.
class RewrittenParams {
 public:
  // `replace(value)` returns the new value of a word (or the same value).
  template <typename Replace>
  RewrittenParams(const ParamLayout& layout, const ParamValues& values,
                  const std::vector<ParamWord>& words, Replace replace);
  // kernelParams for the launch (nullptr in the packed-buffer form).
  void** params() { return pointers_.empty() ? nullptr : pointers_.data(); }
  // `extra` for the launch (nullptr in the kernelParams form).
  void** extra() { return buffer_.empty() ? nullptr : extra_.data(); }

 private:
  std::vector<void*> pointers_;
  std::vector<std::unique_ptr<unsigned char[]>> copies_;  // rewritten parameters' bytes
  std::vector<unsigned char> buffer_;                     // the packed buffer's copy
  size_t buffer_size_ = 0;
  std::array<void*, 5> extra_{};
};

// ---- templates ----

uint64_t load_word(const unsigned char* at);
void store_word(unsigned char* at, uint64_t value);

template <typename Keep>
std::vector<ParamWord> candidate_words(const ParamLayout& layout, const ParamValues& values,
                                       Keep keep) {
  std::vector<ParamWord> words;
  for (size_t i = 0; i < layout.params.size(); ++i) {
    const unsigned char* bytes = values.bytes_of(layout, i);
    if (bytes == nullptr) continue;
    for (size_t at = 0; at + 8 <= layout.params[i].size; at += 8) {
      uint64_t value = load_word(bytes + at);
      if (keep(value)) words.push_back({i, at, value});
    }
  }
  return words;
}

template <typename Replace>
RewrittenParams::RewrittenParams(const ParamLayout& layout, const ParamValues& values,
                                 const std::vector<ParamWord>& words, Replace replace) {
  if (values.kernel_params == nullptr) {
    // CU_LAUNCH_PARAM_BUFFER_POINTER 0x01, _BUFFER_SIZE 0x02, _END 0x00 (cuda.h).
    buffer_.assign(values.buffer, values.buffer + values.buffer_size);
    buffer_size_ = values.buffer_size;
    extra_ = {reinterpret_cast<void*>(uintptr_t{1}), buffer_.data(),
              reinterpret_cast<void*>(uintptr_t{2}), &buffer_size_, nullptr};
    for (const ParamWord& word : words) {
      store_word(buffer_.data() + layout.params[word.param].offset + word.offset,
                 replace(word.value));
    }
    return;
  }
  pointers_.assign(values.kernel_params, values.kernel_params + layout.params.size());
  size_t copied_param = SIZE_MAX;
  unsigned char* copy = nullptr;
  for (const ParamWord& word : words) {  // in parameter order
    if (word.param != copied_param) {
      size_t size = layout.params[word.param].size;
      copies_.emplace_back(new unsigned char[size]);
      copy = copies_.back().get();
      std::copy_n(static_cast<const unsigned char*>(values.kernel_params[word.param]), size, copy);
      pointers_[word.param] = copy;
      copied_param = word.param;
    }
    store_word(copy + word.offset, replace(word.value));
  }
}

}  // namespace egm
