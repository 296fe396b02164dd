#include "shim/core/launch_params.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

namespace egm {
namespace {

constexpr int kInvalidValue = 1;   // CUDA_ERROR_INVALID_VALUE: past the last parameter
constexpr int kInvalidHandle = 400;  // CUDA_ERROR_INVALID_HANDLE

// Hand-made layouts by handle, answered like cuFuncGetParamInfo.
std::map<void*, std::vector<ParamSlot>> function_layouts;
std::map<void*, std::vector<ParamSlot>> kernel_layouts;
std::map<void*, int> function_errors;  // an error for every index
int queries = 0;

int answer(const std::map<void*, std::vector<ParamSlot>>& layouts, void* handle, size_t index,
           size_t* offset, size_t* size) {
  ++queries;
  auto found = layouts.find(handle);
  if (found == layouts.end()) return kInvalidHandle;
  if (index >= found->second.size()) return kInvalidValue;
  *offset = found->second[index].offset;
  *size = found->second[index].size;
  return 0;
}

int by_function(void* handle, size_t index, size_t* offset, size_t* size) {
  auto error = function_errors.find(handle);
  if (error != function_errors.end()) {
    ++queries;
    return error->second;
  }
  return answer(function_layouts, handle, index, offset, size);
}

int by_kernel(void* handle, size_t index, size_t* offset, size_t* size) {
  return answer(kernel_layouts, handle, index, offset, size);
}

void* handle(uintptr_t value) { return reinterpret_cast<void*>(value); }

class LaunchParamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    function_layouts.clear();
    kernel_layouts.clear();
    function_errors.clear();
    queries = 0;
  }
};

TEST_F(LaunchParamsTest, LayoutIsWalkedUntilPastTheLast) {
  function_layouts[handle(1)] = {{0, 8}, {8, 4}, {16, 24}};
  ParamLayout layout = query_layout(handle(1), by_function, by_kernel);
  ASSERT_TRUE(layout.known);
  EXPECT_FALSE(layout.from_kernel);
  ASSERT_EQ(layout.params.size(), 3u);
  EXPECT_EQ(layout.params[2].offset, 16u);
  EXPECT_EQ(layout.params[2].size, 24u);
}

TEST_F(LaunchParamsTest, KernelWithoutParametersIsKnownAndEmpty) {
  function_layouts[handle(2)] = {};
  ParamLayout layout = query_layout(handle(2), by_function, by_kernel);
  EXPECT_TRUE(layout.known);
  EXPECT_TRUE(layout.params.empty());
}

// The runtime launches CUkernel handles cast to CUfunction: cuFuncGetParamInfo
// says invalid handle, cuKernelGetParamInfo answers.
TEST_F(LaunchParamsTest, LibraryKernelHandleIsAskedThroughTheKernelQuery) {
  kernel_layouts[handle(3)] = {{0, 8}, {8, 8}};
  ParamLayout layout = query_layout(handle(3), by_function, by_kernel);
  ASSERT_TRUE(layout.known);
  EXPECT_TRUE(layout.from_kernel);
  EXPECT_EQ(layout.params.size(), 2u);
}

TEST_F(LaunchParamsTest, UnknownWhenNeitherQueryAnswersOrAnAnswerIsAbsurd) {
  EXPECT_FALSE(query_layout(handle(4), by_function, by_kernel).known);
  EXPECT_FALSE(query_layout(handle(4), nullptr, nullptr).known);
  function_layouts[handle(5)] = {{0, 8}, {8, 0}};  // a size of 0
  EXPECT_FALSE(query_layout(handle(5), by_function, by_kernel).known);
  function_layouts[handle(6)] = {{0, 8}, {size_t{1} << 20, 8}};  // past 64 KiB
  EXPECT_FALSE(query_layout(handle(6), by_function, by_kernel).known);
  // An error in the middle of the walk is not "past the last".
  function_errors[handle(7)] = 999;
  EXPECT_FALSE(query_layout(handle(7), by_function, by_kernel).known);
}

TEST_F(LaunchParamsTest, AtMost4096Parameters) {
  std::vector<ParamSlot> many;
  for (size_t i = 0; i < kMaxKernelParams + 1; ++i) many.push_back({i * 8, 8});
  function_layouts[handle(8)] = many;
  EXPECT_FALSE(query_layout(handle(8), by_function, by_kernel).known);
  many.pop_back();
  function_layouts[handle(8)] = many;
  ParamLayout layout = query_layout(handle(8), by_function, by_kernel);
  EXPECT_TRUE(layout.known);
  EXPECT_EQ(layout.params.size(), kMaxKernelParams);
}

TEST_F(LaunchParamsTest, CacheAsksOnceThenChecksTheLastParameterOnly) {
  function_layouts[handle(9)] = {{0, 8}, {8, 8}, {16, 8}, {24, 8}, {32, 8}};
  LayoutCache cache(by_function, by_kernel);
  auto first = cache.layout_of(handle(9));
  ASSERT_TRUE(first->known);
  queries = 0;
  auto second = cache.layout_of(handle(9));
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(queries, 2);  // the last parameter and the one past it
  // Failures are cached too.
  auto unknown = cache.layout_of(handle(10));
  EXPECT_FALSE(unknown->known);
  EXPECT_EQ(cache.size(), 2u);
}

// A module unloaded and another loaded can give a new function the old
// handle's value: a changed layout is asked afresh.
TEST_F(LaunchParamsTest, CacheNoticesAHandleWhoseLayoutChanged) {
  function_layouts[handle(11)] = {{0, 8}, {8, 8}};
  LayoutCache cache(by_function, by_kernel);
  EXPECT_EQ(cache.layout_of(handle(11))->params.size(), 2u);
  function_layouts[handle(11)] = {{0, 8}, {8, 8}, {16, 8}};  // one more
  EXPECT_EQ(cache.layout_of(handle(11))->params.size(), 3u);
  function_layouts[handle(11)] = {{0, 8}, {8, 16}, {24, 8}};  // last moved
  EXPECT_EQ(cache.layout_of(handle(11))->params[2].offset, 24u);
  function_layouts[handle(11)] = {{0, 4}};  // fewer
  EXPECT_EQ(cache.layout_of(handle(11))->params.size(), 1u);
}

struct TwoPointers {
  const uint64_t* in;
  uint64_t words;
  uint64_t* out;
};

TEST_F(LaunchParamsTest, CandidateWordsLookInsideStructsByValue) {
  uint64_t data[4] = {};
  TwoPointers args{data, 4, data + 2};
  int32_t scale = 3;
  uint64_t plain = reinterpret_cast<uint64_t>(data + 1);
  void* params[] = {&args, &scale, &plain};
  ParamLayout layout{true, false, {{0, sizeof args}, {24, 4}, {32, 8}}};
  uintptr_t low = reinterpret_cast<uintptr_t>(data);
  uintptr_t high = low + sizeof data;
  auto in_data = [&](uint64_t value) { return value >= low && value < high; };
  ParamValues values;
  values.kernel_params = params;
  std::vector<ParamWord> words = candidate_words(layout, values, in_data);
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(words[0].param, 0u);
  EXPECT_EQ(words[0].offset, 0u);
  EXPECT_EQ(words[1].param, 0u);
  EXPECT_EQ(words[1].offset, 16u);
  EXPECT_EQ(words[1].value, reinterpret_cast<uint64_t>(data + 2));
  EXPECT_EQ(words[2].param, 2u);  // the 4-byte parameter holds no word
}

TEST_F(LaunchParamsTest, CandidateWordsAreReadUnaligned) {
  alignas(8) unsigned char bytes[24] = {};
  uint64_t value = 0x1234;
  std::memcpy(bytes + 1, &value, 8);  // a parameter value at an odd address
  void* params[] = {bytes + 1};
  ParamLayout layout{true, false, {{0, 8}}};
  ParamValues values;
  values.kernel_params = params;
  auto words = candidate_words(layout, values, [](uint64_t v) { return v == 0x1234; });
  ASSERT_EQ(words.size(), 1u);
}

TEST_F(LaunchParamsTest, PackedBufferOfTheExtraForm) {
  unsigned char buffer[32] = {};
  uint64_t pointer = 0xabc0;
  std::memcpy(buffer + 16, &pointer, 8);
  size_t size = sizeof buffer;
  void* extra[] = {reinterpret_cast<void*>(1), buffer, reinterpret_cast<void*>(2), &size,
                   reinterpret_cast<void*>(0)};
  ParamValues values;
  ASSERT_TRUE(packed_buffer_of(extra, &values.buffer, &values.buffer_size));
  EXPECT_EQ(values.buffer_size, 32u);
  ParamLayout layout{true, false, {{0, 4}, {16, 8}, {24, 16}}};  // the last runs past the buffer
  auto words = candidate_words(layout, values, [](uint64_t v) { return v == 0xabc0; });
  ASSERT_EQ(words.size(), 1u);
  EXPECT_EQ(words[0].param, 1u);
  void* no_size[] = {reinterpret_cast<void*>(1), buffer, reinterpret_cast<void*>(0)};
  EXPECT_FALSE(packed_buffer_of(no_size, &values.buffer, &values.buffer_size));
  void* bad_key[] = {reinterpret_cast<void*>(7), buffer, reinterpret_cast<void*>(0)};
  EXPECT_FALSE(packed_buffer_of(bad_key, &values.buffer, &values.buffer_size));
}

TEST_F(LaunchParamsTest, RewriteTouchesAPrivateCopyOnly) {
  uint64_t data[4] = {};
  TwoPointers args{data, 4, data + 3};
  uint64_t plain = reinterpret_cast<uint64_t>(data + 1);
  uint64_t count = 7;
  void* params[] = {&args, &plain, &count};
  ParamLayout layout{true, false, {{0, sizeof args}, {24, 8}, {32, 8}}};
  uintptr_t low = reinterpret_cast<uintptr_t>(data);
  auto in_data = [&](uint64_t v) { return v >= low && v < low + sizeof data; };
  ParamValues values;
  values.kernel_params = params;
  std::vector<ParamWord> words = candidate_words(layout, values, in_data);
  ASSERT_EQ(words.size(), 3u);
  constexpr uint64_t kCopy = 0x900000;
  RewrittenParams rewritten(layout, values, words,
                            [&](uint64_t v) { return kCopy + (v - low); });
  EXPECT_EQ(rewritten.extra(), nullptr);
  void** out = rewritten.params();
  // The program's own array and values are untouched.
  EXPECT_EQ(params[0], &args);
  EXPECT_EQ(args.in, data);
  EXPECT_EQ(plain, reinterpret_cast<uint64_t>(data + 1));
  // The launch sees copies with the rewritten words, the rest as it was.
  EXPECT_NE(out[0], params[0]);
  TwoPointers seen;
  std::memcpy(&seen, out[0], sizeof seen);
  EXPECT_EQ(reinterpret_cast<uint64_t>(seen.in), kCopy);
  EXPECT_EQ(seen.words, 4u);
  EXPECT_EQ(reinterpret_cast<uint64_t>(seen.out), kCopy + 24);
  EXPECT_EQ(load_word(static_cast<unsigned char*>(out[1])), kCopy + 8);
  EXPECT_EQ(out[2], params[2]);  // not rewritten: the program's own pointer
}

// The packed-buffer form (cuBLAS): the launch gets a copy of the buffer with
// the words rewritten and an `extra` list naming it; the program's buffer
// keeps its values.
TEST_F(LaunchParamsTest, RewriteOfAPackedBufferTouchesAPrivateCopyOnly) {
  uint64_t data[4] = {};
  struct {
    uint32_t count;
    uint32_t pad;
    uint64_t* in;
    uint64_t* out;
  } buffer{5, 0, data + 1, data};
  size_t size = sizeof buffer;
  void* extra[] = {reinterpret_cast<void*>(1), &buffer, reinterpret_cast<void*>(2), &size,
                   reinterpret_cast<void*>(0)};
  ParamLayout layout{true, false, {{0, 4}, {8, 8}, {16, 8}}};
  ParamValues values;
  ASSERT_TRUE(param_values_of(nullptr, extra, &values));
  uintptr_t low = reinterpret_cast<uintptr_t>(data);
  auto in_data = [&](uint64_t v) { return v >= low && v < low + sizeof data; };
  std::vector<ParamWord> words = candidate_words(layout, values, in_data);
  ASSERT_EQ(words.size(), 2u);
  constexpr uint64_t kCopy = 0x900000;
  RewrittenParams rewritten(layout, values, words, [&](uint64_t v) { return kCopy + (v - low); });
  EXPECT_EQ(rewritten.params(), nullptr);
  void** out = rewritten.extra();
  ASSERT_NE(out, nullptr);
  const unsigned char* seen = nullptr;
  size_t seen_size = 0;
  ASSERT_TRUE(packed_buffer_of(out, &seen, &seen_size));
  ASSERT_EQ(seen_size, sizeof buffer);
  EXPECT_NE(static_cast<const void*>(seen), static_cast<const void*>(&buffer));
  EXPECT_EQ(load_word(seen + 8), kCopy + 8);
  EXPECT_EQ(load_word(seen + 16), kCopy);
  EXPECT_EQ(seen[0], 5);
  EXPECT_EQ(buffer.in, data + 1);  // the program's buffer is untouched
  EXPECT_EQ(buffer.out, data);
}

// kernelParams and extra together is the driver's error to return: nothing is read.
TEST_F(LaunchParamsTest, ValuesAreReadFromOneFormOnly) {
  uint64_t value = 0;
  void* params[] = {&value};
  void* extra[] = {reinterpret_cast<void*>(0)};
  ParamValues values;
  EXPECT_TRUE(param_values_of(params, nullptr, &values));
  EXPECT_FALSE(param_values_of(params, extra, &values));
  EXPECT_FALSE(param_values_of(nullptr, extra, &values));  // no buffer in it
  EXPECT_FALSE(param_values_of(nullptr, nullptr, &values));
}

}  // namespace
}  // namespace egm
