// Section 6: the cost of a kernel launch, for staging (EGM_STAGING, issue 13):
// with staging on, every launch goes through the shim's override, which looks
// up each parameter word; a launch that stages nothing should cost at most
// ~1 us more than without the shim. Measured as host time to enqueue bursts
// of launches of a one-thread kernel (a burst is short enough not to fill the
// launch queue, and is synchronized before the next), with two arguments:
// a 256 B buffer (below EGM_MIN_SIZE: on the device, never staged) and a
// 2 MiB one (host-placed in the shim's configurations, so staged when staging
// is on: that cost includes the copies' enqueue, and queue back-pressure).
#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "bench/bench_kernels.h"
#include "bench/driver_egm.h"
#include "bench/sections.h"
#include "bench/stats.h"

namespace egm::bench {
namespace {

constexpr size_t kDeviceBytes = 256;
constexpr size_t kPlacedBytes = 2 * kMiB;
constexpr int kBursts = 200;
constexpr int kLaunchesPerBurst = 100;
constexpr int kQuickDivisor = 10;

// ns per launch of each burst, for kernels reading `buffer`.
std::vector<double> burst_ns(const void* buffer, void* scratch, int bursts, std::string* error) {
  std::vector<double> ns;
  for (int burst = 0; burst < bursts && error->empty(); ++burst) {
    double start = now_seconds();
    for (int i = 0; i < kLaunchesPerBurst; ++i) {
      cudaError_t result = launch_touch(buffer, scratch);
      if (result != cudaSuccess) {
        *error = "launch: " + runtime_error_text(result);
        break;
      }
    }
    double seconds = now_seconds() - start;
    cudaError_t synced = cudaDeviceSynchronize();
    if (synced != cudaSuccess) *error = "cudaDeviceSynchronize: " + runtime_error_text(synced);
    if (burst > 0) ns.push_back(seconds * 1e9 / kLaunchesPerBurst);  // the first one warms up
  }
  return ns;
}

JsonObject measure(size_t bytes, void* scratch, int bursts) {
  JsonObject point;
  void* buffer = nullptr;
  cudaError_t made = cudaMalloc(&buffer, bytes);
  if (made != cudaSuccess) return point.text("error", "cudaMalloc: " + runtime_error_text(made));
  cudaMemset(buffer, 1, bytes);
  std::string error;
  Summary summary = summarize(burst_ns(buffer, scratch, bursts, &error));
  point.integer("bytes", static_cast<long long>(bytes))
      .text("location", memory_location(buffer))
      .integer("launches", static_cast<long long>(summary.count) * kLaunchesPerBurst)
      .number("median_ns", summary.median)
      .number("p90_ns", summary.p90)
      .number("min_ns", summary.min);
  if (!error.empty()) point.text("error", error);
  cudaFree(buffer);
  return point;
}

}  // namespace

JsonObject run_launch(const BenchOptions& options) {
  JsonObject results;
  void* scratch = nullptr;
  cudaError_t made = cudaMalloc(&scratch, kDeviceBytes);
  if (made != cudaSuccess) return results.text("error", "cudaMalloc: " + runtime_error_text(made));
  int bursts = options.quick ? kBursts / kQuickDivisor : kBursts;
  results.object("device_argument", measure(kDeviceBytes, scratch, bursts))
      .object("placed_argument", measure(kPlacedBytes, scratch, bursts));
  cudaFree(scratch);
  return results;
}

}  // namespace egm::bench
