// GoogleTest cases of multi_gpu_peer_test: memory cudaMalloc'ed on GPU 0 is
// read and written by kernels on GPU 1 and copied to and from GPU 1 with
// cudaMemcpyPeer, with or without libegm.so preloaded.
//
// EGMTEST_PEER_MODE picks how GPU 1 gets access to GPU 0's memory:
//   enable (default): cudaSetDevice(1); cudaDeviceEnablePeerAccess(0), as
//     programs do; the shim must then grant GPU 1 every chunk of GPU 0.
//   all: no enable call at all; only libegm.so with EGM_PEER_ACCESS=all makes
//     the memory reachable, so this mode SKIPS without them.
// With fewer than two GPUs every test SKIPS with the reason. With
// EGMTEST_EXPECT_REDIRECT=1 the shim's log (EGM_LOG_FILE) must show GPU 0's
// buffers as event=map device=0, and (enable mode) the peer-access line.
//
// The `RESULT` lines on stdout depend only on the data: run_multi_gpu.sh
// compares them between runs with and without the shim, in both modes.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "tests/gpu/egm_log_reader.h"
#include "tests/gpu/multi_gpu_peer.h"

namespace egm_gpu_test {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
// Odd sizes: the shim rounds `mapped` up; the program still sees exactly these.
constexpr size_t kBufferBytes = 64 * kMiB + 1;
// Different enough from kBufferBytes that the shim's pool cannot serve it
// from a chunk cached by an earlier test: it must be a fresh chunk.
constexpr size_t kLaterBytes = 40 * kMiB + 3;
constexpr int kOwner = 0;     // the GPU whose memory is shared
constexpr int kAccessor = 1;  // the GPU that uses it
constexpr std::chrono::milliseconds kLogWait{2000};

#define ASSERT_CUDA_OK(expr)                                                      \
  do {                                                                            \
    cudaError_t status_ = (expr);                                                 \
    ASSERT_EQ(status_, cudaSuccess) << #expr << ": " << cudaGetErrorName(status_) \
                                    << " (" << cudaGetErrorString(status_) << ")"; \
  } while (0)

bool env_is(const char* name, const char* value) {
  const char* text = std::getenv(name);
  return text != nullptr && std::strcmp(text, value) == 0;
}

bool peer_access_all_mode() { return env_is("EGMTEST_PEER_MODE", "all"); }

// Why these tests cannot run here, or nullopt.
std::optional<std::string> why_not_runnable() {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    return std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(status);
  }
  if (count < 2) return "needs 2 GPUs, found " + std::to_string(count);
  if (peer_access_all_mode()) {
    const char* preload = std::getenv("LD_PRELOAD");
    if (!env_is("EGM_PEER_ACCESS", "all") || preload == nullptr ||
        std::strstr(preload, "libegm") == nullptr) {
      return std::string("EGMTEST_PEER_MODE=all needs LD_PRELOAD=libegm.so and EGM_PEER_ACCESS=all");
    }
    return std::nullopt;
  }
  int can_access = 0;
  status = cudaDeviceCanAccessPeer(&can_access, kAccessor, kOwner);
  if (status != cudaSuccess || can_access == 0) {
    return std::string("GPU 1 cannot access GPU 0's memory (cudaDeviceCanAccessPeer)");
  }
  return std::nullopt;
}

void print_result(const char* test, const char* what, uint64_t value) {
  std::printf("RESULT %s %s=%" PRIu64 "\n", test, what, value);
  std::fflush(stdout);
}

class MultiGpuPeerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::optional<std::string> why = why_not_runnable()) {
      GTEST_SKIP() << "multi-GPU peer test skipped: " << *why;
    }
    if (env_is("EGMTEST_EXPECT_REDIRECT", "1")) {
      const char* log_file = std::getenv("EGM_LOG_FILE");
      ASSERT_NE(log_file, nullptr) << "EGMTEST_EXPECT_REDIRECT=1 needs EGM_LOG_FILE";
      log_path_ = egm_test::expand_pid_template(log_file, static_cast<long>(::getpid()));
    }
    ASSERT_NO_FATAL_FAILURE(let_accessor_use_owner_memory());
  }

  void TearDown() override {
    if (owner_buffer_ != nullptr) {
      // Freed while the other GPU is current: the shim must still unmap it.
      ASSERT_CUDA_OK(cudaSetDevice(kAccessor));
      ASSERT_CUDA_OK(cudaFree(owner_buffer_));
    }
    if (accessor_buffer_ != nullptr) ASSERT_CUDA_OK(cudaFree(accessor_buffer_));
  }

  // enable mode: what programs do. all mode: nothing (the shim grants).
  static void let_accessor_use_owner_memory() {
    if (peer_access_all_mode()) return;
    ASSERT_CUDA_OK(cudaSetDevice(kAccessor));
    cudaError_t status = cudaDeviceEnablePeerAccess(kOwner, 0);
    if (status == cudaErrorPeerAccessAlreadyEnabled) {
      cudaGetLastError();  // enabled by an earlier test of this process
      return;
    }
    ASSERT_CUDA_OK(status);
  }

  void* allocate_on(int device, size_t bytes) {
    void* pointer = nullptr;
    EXPECT_EQ(cudaSetDevice(device), cudaSuccess);
    EXPECT_EQ(cudaMalloc(&pointer, bytes), cudaSuccess) << bytes << " bytes on GPU " << device;
    if (pointer != nullptr) expect_mapped_for(pointer, bytes, device);
    return pointer;
  }

  // EGMTEST_EXPECT_REDIRECT=1: the shim mapped it, for `device`.
  void expect_mapped_for(const void* pointer, size_t bytes, int device) {
    if (log_path_.empty()) return;
    egm_test::EventQuery query;
    query.event = "map";
    query.addr = reinterpret_cast<uintptr_t>(pointer);
    query.requested = bytes;
    std::optional<egm_test::LogFields> map =
        egm_test::wait_for_event(log_path_, 0, query, kLogWait);
    ASSERT_TRUE(map.has_value()) << "no event=map line for " << bytes << " bytes in " << log_path_;
    EXPECT_EQ((*map)["device"], std::to_string(device)) << egm_test::describe(*map);
  }

  // EGMTEST_EXPECT_REDIRECT=1 in enable mode: the shim granted GPU 1.
  void expect_peer_access_logged() {
    if (log_path_.empty() || peer_access_all_mode()) return;
    for (egm_test::LogFields& fields : egm_test::read_log_events(log_path_)) {
      if (fields["event"] == "peer-access" && fields["device"] == "0" && fields["peer"] == "1") {
        EXPECT_EQ(fields["result"], "ok") << egm_test::describe(fields);
        return;
      }
    }
    ADD_FAILURE() << "no event=peer-access device=0 peer=1 line in " << log_path_;
  }

  void expect_pattern_on(int device, const void* buffer, size_t bytes, uint32_t seed) {
    uint64_t mismatches = ~uint64_t{0};
    ASSERT_CUDA_OK(count_mismatches_on(device, buffer, bytes, seed, &mismatches));
    EXPECT_EQ(mismatches, 0u) << "bytes differing from pattern " << seed << " seen by GPU "
                              << device;
  }

  std::string log_path_;
  void* owner_buffer_ = nullptr;
  void* accessor_buffer_ = nullptr;
};

TEST_F(MultiGpuPeerTest, Gpu1ReadsAndWritesGpu0Memory) {
  owner_buffer_ = allocate_on(kOwner, kBufferBytes);
  ASSERT_NE(owner_buffer_, nullptr);
  ASSERT_CUDA_OK(fill_on(kOwner, owner_buffer_, kBufferBytes, 11));
  uint64_t mismatches = ~uint64_t{0};
  ASSERT_CUDA_OK(check_and_rewrite_on(kAccessor, owner_buffer_, kBufferBytes, 11, 29, &mismatches));
  EXPECT_EQ(mismatches, 0u) << "GPU 1 read bytes GPU 0 did not write";
  expect_pattern_on(kOwner, owner_buffer_, kBufferBytes, 29);  // GPU 1's writes, seen by GPU 0
  uint64_t on_owner = 0, on_accessor = 1;
  ASSERT_CUDA_OK(checksum_on(kOwner, owner_buffer_, kBufferBytes, &on_owner));
  ASSERT_CUDA_OK(checksum_on(kAccessor, owner_buffer_, kBufferBytes, &on_accessor));
  EXPECT_EQ(on_owner, on_accessor);
  print_result("read-write", "mismatches", mismatches);
  print_result("read-write", "checksum", on_owner);
  expect_peer_access_logged();
}

TEST_F(MultiGpuPeerTest, CudaMemcpyPeerCopiesBothWays) {
  owner_buffer_ = allocate_on(kOwner, kBufferBytes);
  accessor_buffer_ = allocate_on(kAccessor, kBufferBytes);
  ASSERT_NE(owner_buffer_, nullptr);
  ASSERT_NE(accessor_buffer_, nullptr);
  ASSERT_CUDA_OK(fill_on(kOwner, owner_buffer_, kBufferBytes, 37));
  ASSERT_CUDA_OK(
      cudaMemcpyPeer(accessor_buffer_, kAccessor, owner_buffer_, kOwner, kBufferBytes));
  expect_pattern_on(kAccessor, accessor_buffer_, kBufferBytes, 37);
  ASSERT_CUDA_OK(fill_on(kAccessor, accessor_buffer_, kBufferBytes, 41));
  ASSERT_CUDA_OK(
      cudaMemcpyPeer(owner_buffer_, kOwner, accessor_buffer_, kAccessor, kBufferBytes));
  expect_pattern_on(kOwner, owner_buffer_, kBufferBytes, 41);
  expect_pattern_on(kAccessor, owner_buffer_, kBufferBytes, 41);  // GPU 1 reads it directly too
  uint64_t checksum = 0;
  ASSERT_CUDA_OK(checksum_on(kAccessor, owner_buffer_, kBufferBytes, &checksum));
  print_result("memcpy-peer", "checksum", checksum);
}

// Runs last: under a shim that forgets to grant GPU 1 access to chunks made
// after peer access was enabled, GPU 1's kernel faults here (and a fault
// spoils the CUDA context for whatever would run after it).
TEST_F(MultiGpuPeerTest, ZLaterAllocationsOfGpu0AreUsableByGpu1) {
  owner_buffer_ = allocate_on(kOwner, kLaterBytes);
  ASSERT_NE(owner_buffer_, nullptr);
  ASSERT_CUDA_OK(fill_on(kOwner, owner_buffer_, kLaterBytes, 53));
  uint64_t mismatches = ~uint64_t{0};
  ASSERT_CUDA_OK(check_and_rewrite_on(kAccessor, owner_buffer_, kLaterBytes, 53, 59, &mismatches));
  EXPECT_EQ(mismatches, 0u);
  expect_pattern_on(kOwner, owner_buffer_, kLaterBytes, 59);
  uint64_t checksum = 0;
  ASSERT_CUDA_OK(checksum_on(kOwner, owner_buffer_, kLaterBytes, &checksum));
  print_result("later-allocation", "checksum", checksum);
}

}  // namespace
}  // namespace egm_gpu_test
