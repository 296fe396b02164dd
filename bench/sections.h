// The measurements egm-bench can make; one per process (run_bench.sh runs
// each under the configurations that it compares). Each returns the
// "results" object of the JSON report; failures are fields, not exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "bench/json.h"

namespace egm::bench {

inline constexpr size_t kKiB = size_t{1} << 10;
inline constexpr size_t kMiB = size_t{1} << 20;
inline constexpr size_t kGiB = size_t{1} << 30;

struct BenchOptions {
  std::string section;
  std::string config = "unnamed";  // label only: the caller sets the environment
  bool quick = false;
  std::string json_path;  // empty: stdout
  int device = 0;
};

// 1. cudaMalloc+cudaFree latency by size (through the shim when preloaded).
JsonObject run_runtime_latency(const BenchOptions& options);
// 1. The same sizes through the raw EGM sequence (driver API, no shim).
JsonObject run_raw_egm_latency(const BenchOptions& options);
// 2. Kernel read/write bandwidth over cudaMalloc, cudaHostAlloc and managed memory.
JsonObject run_bandwidth(const BenchOptions& options);
// 3. Cost of calls the shim sees but does not redirect.
JsonObject run_passthrough(const BenchOptions& options);
// 4. Allocation patterns whose mapped/requested ratio is read from the shim's log.
JsonObject run_memory_4k(const BenchOptions& options);
JsonObject run_memory_mix(const BenchOptions& options);
// 5. Allocate/free operations per second with 1, 8 and 32 threads.
JsonObject run_throughput(const BenchOptions& options);
// 6. ns per kernel launch, with a device and a host-placed argument (staging).
JsonObject run_launch(const BenchOptions& options);

// "cudaErrorX: description" of a runtime error code.
std::string runtime_error_text(int error);

// Reproducible random numbers: same seed, same sequence on every platform.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t next();
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // log-uniform in [low, high], rounded up to a multiple of 512 bytes (as
  // PyTorch's caching allocator rounds its requests).
  size_t log_uniform_size(size_t low, size_t high);

 private:
  uint64_t state_;
};

}  // namespace egm::bench
