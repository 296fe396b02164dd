// GoogleTest cases of gpu_alloc_test: memory from cudaMalloc and
// cudaMallocManaged must hold what kernels, copies, memsets and (managed) the
// CPU write into it, with or without libegm.so preloaded.
//
// Without a usable GPU every test SKIPS with the reason (CI has no driver).
// With EGMTEST_EXPECT_REDIRECT=1 each allocation must also show up in the shim's
// log (EGM_LOG_FILE) as `event=map`, and each cudaFree as `event=unmap`.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/gpu/egm_log_reader.h"
#include "tests/gpu/gpu_kernels.h"

namespace egm_gpu_test {
namespace {

using egm_test::EventQuery;
using egm_test::LogFields;

constexpr size_t kKiB = size_t{1} << 10;
constexpr size_t kMiB = size_t{1} << 20;
// 3 MiB + 1 is no multiple of any allocation granularity: the shim must round
// `mapped` up while the program still sees exactly `requested` bytes.
constexpr size_t kOddSize = 3 * kMiB + 1;
constexpr uint32_t kFirstSeed = 11;
constexpr uint32_t kSecondSeed = 29;
// Long enough for a loaded machine; the shim writes each line at once.
constexpr std::chrono::milliseconds kLogWait{2000};

#define ASSERT_CUDA_OK(expr)                                                        \
  do {                                                                              \
    cudaError_t status_ = (expr);                                                   \
    ASSERT_EQ(status_, cudaSuccess) << #expr << ": " << cuda_error_text(status_);   \
  } while (0)

std::string cuda_error_text(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")";
}

enum class AllocApi { kMalloc, kManaged };

const char* api_name(AllocApi api) {
  return api == AllocApi::kMalloc ? "cudaMalloc" : "cudaMallocManaged";
}

// Why the GPU tests cannot run here, or nullopt when a device is usable.
std::optional<std::string> why_no_gpu() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) return "cudaGetDeviceCount failed: " + cuda_error_text(status);
  if (count == 0) return std::string("cudaGetDeviceCount reported 0 devices");
  return std::nullopt;
}

// EGMTEST_EXPECT_REDIRECT=1 (set by run_on_gpu.sh with LD_PRELOAD=libegm.so):
// the shim's log must record every allocation and free.
struct RedirectExpectation {
  bool enabled = false;
  std::string log_path;  // EGM_LOG_FILE with %p expanded

  static RedirectExpectation from_environment() {
    RedirectExpectation expectation;
    const char* expect = std::getenv("EGMTEST_EXPECT_REDIRECT");
    expectation.enabled = expect != nullptr && std::strcmp(expect, "1") == 0;
    const char* log_file = std::getenv("EGM_LOG_FILE");
    if (log_file != nullptr) {
      expectation.log_path = egm_test::expand_pid_template(log_file, static_cast<long>(::getpid()));
    }
    return expectation;
  }
};

// A live allocation and the log line its map was recorded in (if checked).
struct Allocation {
  void* address = nullptr;
  AllocApi api = AllocApi::kMalloc;
  size_t bytes = 0;
  std::optional<std::string> map_id;
};

uint64_t address_of(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer); }

std::string hex(uint64_t value) {
  std::ostringstream text;
  text << "0x" << std::hex << value;
  return text.str();
}

// The shim's own words about requests of this size since `first`: when a map
// line is missing, a fallback line says which step failed.
std::string fallbacks_for(const std::string& log_path, size_t first, size_t bytes) {
  std::vector<LogFields> events = egm_test::read_log_events(log_path);
  std::string text;
  for (size_t i = first; i < events.size(); ++i) {
    LogFields& fields = events[i];
    if (fields["event"] == "fallback" && fields["requested"] == std::to_string(bytes)) {
      text += "\n  " + egm_test::describe(fields);
    }
  }
  return text.empty() ? "\n  (no fallback line for this size either)" : text;
}

// Counts the bytes of `data` that differ from the pattern `seed` and reports
// the first one.
void expect_host_bytes_match_pattern(const uint8_t* data, size_t bytes, uint32_t seed,
                                     const char* where) {
  size_t mismatches = 0;
  size_t first_bad = bytes;
  for (size_t i = 0; i < bytes; ++i) {
    if (data[i] == pattern_byte(i, seed)) continue;
    if (mismatches++ == 0) first_bad = i;
  }
  EXPECT_EQ(mismatches, 0u) << where << ": " << mismatches << " of " << bytes
                            << " bytes differ from pattern " << seed << ", first at " << first_bad;
}

std::vector<uint8_t> pattern_bytes(size_t bytes, uint32_t seed) {
  std::vector<uint8_t> data(bytes);
  for (size_t i = 0; i < bytes; ++i) data[i] = pattern_byte(i, seed);
  return data;
}

class GpuAllocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::optional<std::string> reason = why_no_gpu()) {
      GTEST_SKIP() << "No usable CUDA GPU, GPU allocation test skipped (expected on machines "
                      "without an NVIDIA driver, such as CI): "
                   << *reason;
    }
    expectation_ = RedirectExpectation::from_environment();
    if (expectation_.enabled) {
      ASSERT_FALSE(expectation_.log_path.empty())
          << "EGMTEST_EXPECT_REDIRECT=1 needs EGM_LOG_FILE: the shim's log is what is checked";
    }
    ASSERT_NO_FATAL_FAILURE(scratch_ = allocate(AllocApi::kMalloc, kCountScratchBytes));
    ASSERT_NE(scratch_, nullptr);  // a kernel writing through null would poison the context
  }

  void TearDown() override {
    if (scratch_ != nullptr) release(scratch_);
    for (const Allocation& leftover : live_) cudaFree(leftover.address);  // after a failure
    live_.clear();
  }

  // Allocates through `api` and, when expected, checks the shim's map line.
  // Returns nullptr after a (fatal) failure.
  void* allocate(AllocApi api, size_t bytes) {
    size_t log_mark = log_line_count();
    void* address = nullptr;
    cudaError_t status = api == AllocApi::kMalloc
                             ? cudaMalloc(&address, bytes)
                             : cudaMallocManaged(&address, bytes, cudaMemAttachGlobal);
    EXPECT_EQ(status, cudaSuccess) << api_name(api) << "(" << bytes
                                   << "): " << cuda_error_text(status);
    if (status != cudaSuccess) return nullptr;
    live_.push_back({address, api, bytes, std::nullopt});
    if (expectation_.enabled) expect_map_logged(live_.back(), log_mark);
    return address;
  }

  // Frees through cudaFree and, when expected, checks the shim's unmap line.
  void release(void* address) {
    auto it = live_.begin();
    while (it != live_.end() && it->address != address) ++it;
    ASSERT_NE(it, live_.end()) << "release of an address this test did not allocate";
    Allocation allocation = *it;
    live_.erase(it);
    if (address == scratch_) scratch_ = nullptr;
    size_t log_mark = log_line_count();
    ASSERT_CUDA_OK(cudaFree(address));
    if (expectation_.enabled) expect_unmap_logged(allocation, log_mark);
  }

  void* scratch() const { return scratch_; }

 private:
  size_t log_line_count() const {
    if (!expectation_.enabled) return 0;
    return egm_test::read_log_events(expectation_.log_path).size();
  }

  void expect_map_logged(Allocation& allocation, size_t log_mark) {
    EventQuery query{"map", address_of(allocation.address), api_name(allocation.api),
                     allocation.bytes};
    std::optional<LogFields> line =
        egm_test::wait_for_event(expectation_.log_path, log_mark, query, kLogWait);
    ASSERT_TRUE(line.has_value())
        << "EGMTEST_EXPECT_REDIRECT=1 but " << expectation_.log_path << " has no line with event=map api="
        << api_name(allocation.api) << " addr=" << hex(address_of(allocation.address))
        << " requested=" << allocation.bytes << fallbacks_for(expectation_.log_path, log_mark,
                                                               allocation.bytes);
    std::optional<uint64_t> mapped = egm_test::parse_unsigned((*line)["mapped"]);
    EXPECT_TRUE(mapped && *mapped >= allocation.bytes)
        << "mapped must cover requested: " << egm_test::describe(*line);
    if (line->count("id") != 0) allocation.map_id = (*line)["id"];
  }

  void expect_unmap_logged(const Allocation& allocation, size_t log_mark) {
    EventQuery query{"unmap", address_of(allocation.address), std::nullopt, std::nullopt,
                     allocation.map_id};
    EXPECT_TRUE(egm_test::wait_for_event(expectation_.log_path, log_mark, query, kLogWait))
        << "EGMTEST_EXPECT_REDIRECT=1 but " << expectation_.log_path
        << " has no line with event=unmap addr=" << hex(address_of(allocation.address))
        << (allocation.map_id ? " id=" + *allocation.map_id : "") << " after cudaFree";
  }

  RedirectExpectation expectation_;
  std::vector<Allocation> live_;
  void* scratch_ = nullptr;  // for the counting kernels; itself a checked cudaMalloc
};

// Checks on the GPU that `buffer` holds the pattern `seed`.
void expect_gpu_sees_pattern(const void* buffer, size_t bytes, uint32_t seed, void* scratch) {
  uint64_t mismatches = 0;
  ASSERT_CUDA_OK(count_pattern_mismatches_on_gpu(buffer, bytes, seed, scratch, &mismatches));
  EXPECT_EQ(mismatches, 0u) << "the GPU reads " << mismatches << " of " << bytes
                            << " bytes different from pattern " << seed;
}

// Copies `buffer` back with cudaMemcpy and checks the pattern on the CPU.
void expect_copy_back_sees_pattern(const void* buffer, size_t bytes, uint32_t seed) {
  std::vector<uint8_t> host(bytes);
  ASSERT_CUDA_OK(cudaMemcpy(host.data(), buffer, bytes, cudaMemcpyDeviceToHost));
  expect_host_bytes_match_pattern(host.data(), bytes, seed, "after cudaMemcpy to the host");
}

void upload_pattern(void* buffer, size_t bytes, uint32_t seed) {
  std::vector<uint8_t> host = pattern_bytes(bytes, seed);
  ASSERT_CUDA_OK(cudaMemcpy(buffer, host.data(), bytes, cudaMemcpyHostToDevice));
}

void expect_gpu_sees_value(const void* buffer, size_t bytes, uint8_t value, void* scratch) {
  uint64_t mismatches = 0;
  ASSERT_CUDA_OK(count_value_mismatches_on_gpu(buffer, bytes, value, scratch, &mismatches));
  EXPECT_EQ(mismatches, 0u) << "the GPU reads " << mismatches << " of " << bytes
                            << " bytes different from the memset value " << int{value};
}

const size_t kSizes[] = {4 * kKiB, kOddSize, 256 * kMiB};

std::string size_name(const ::testing::TestParamInfo<size_t>& info) {
  if (info.param == kOddSize) return "3MiB_plus_1";
  if (info.param % kMiB == 0) return std::to_string(info.param / kMiB) + "MiB";
  return std::to_string(info.param / kKiB) + "KiB";
}

class DeviceMemoryTest : public GpuAllocTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(DeviceMemoryTest, KernelsAndCopiesSeeTheSameBytes) {
  const size_t bytes = GetParam();
  void* buffer = nullptr;
  ASSERT_NO_FATAL_FAILURE(buffer = allocate(AllocApi::kMalloc, bytes));
  ASSERT_NE(buffer, nullptr);

  ASSERT_CUDA_OK(fill_pattern_on_gpu(buffer, bytes, kFirstSeed));
  expect_gpu_sees_pattern(buffer, bytes, kFirstSeed, scratch());
  expect_copy_back_sees_pattern(buffer, bytes, kFirstSeed);

  ASSERT_NO_FATAL_FAILURE(upload_pattern(buffer, bytes, kSecondSeed));
  expect_gpu_sees_pattern(buffer, bytes, kSecondSeed, scratch());

  release(buffer);
}

INSTANTIATE_TEST_SUITE_P(Sizes, DeviceMemoryTest, ::testing::ValuesIn(kSizes), size_name);

class ManagedMemoryTest : public GpuAllocTest, public ::testing::WithParamInterface<size_t> {};

TEST_P(ManagedMemoryTest, GpuAndCpuSeeTheSameBytes) {
  const size_t bytes = GetParam();
  void* buffer = nullptr;
  ASSERT_NO_FATAL_FAILURE(buffer = allocate(AllocApi::kManaged, bytes));
  ASSERT_NE(buffer, nullptr);
  auto* bytes_on_cpu = static_cast<uint8_t*>(buffer);

  ASSERT_CUDA_OK(fill_pattern_on_gpu(buffer, bytes, kFirstSeed));  // synchronizes
  expect_gpu_sees_pattern(buffer, bytes, kFirstSeed, scratch());
  expect_host_bytes_match_pattern(bytes_on_cpu, bytes, kFirstSeed, "CPU reading managed memory");
  expect_copy_back_sees_pattern(buffer, bytes, kFirstSeed);

  std::vector<uint8_t> second = pattern_bytes(bytes, kSecondSeed);
  std::memcpy(bytes_on_cpu, second.data(), bytes);  // the CPU writes, the GPU reads
  expect_gpu_sees_pattern(buffer, bytes, kSecondSeed, scratch());

  release(buffer);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ManagedMemoryTest, ::testing::ValuesIn(kSizes), size_name);

class MemsetTest : public GpuAllocTest, public ::testing::WithParamInterface<AllocApi> {};

// Two memsets at an odd boundary: the whole buffer, then its second half.
TEST_P(MemsetTest, KernelSeesTheMemsetBytes) {
  const size_t bytes = kOddSize;
  const size_t half = bytes / 2;
  void* buffer = nullptr;
  ASSERT_NO_FATAL_FAILURE(buffer = allocate(GetParam(), bytes));
  ASSERT_NE(buffer, nullptr);
  auto* base = static_cast<uint8_t*>(buffer);

  ASSERT_CUDA_OK(cudaMemset(buffer, 0xA5, bytes));
  ASSERT_CUDA_OK(cudaMemset(base + half, 0x5A, bytes - half));
  ASSERT_CUDA_OK(cudaDeviceSynchronize());
  expect_gpu_sees_value(base, half, 0xA5, scratch());
  expect_gpu_sees_value(base + half, bytes - half, 0x5A, scratch());

  release(buffer);
}

INSTANTIATE_TEST_SUITE_P(Apis, MemsetTest,
                         ::testing::Values(AllocApi::kMalloc, AllocApi::kManaged),
                         [](const ::testing::TestParamInfo<AllocApi>& info) {
                           return std::string(api_name(info.param));
                         });

}  // namespace
}  // namespace egm_gpu_test
