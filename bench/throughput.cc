// Section 5: allocate/free operations per second from 1, 8 and 32 threads,
// each keeping a few allocations of mixed sizes (4 KiB - 4 MiB) alive.
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "bench/sections.h"
#include "bench/stats.h"

namespace egm::bench {
namespace {

constexpr int kThreadCounts[] = {1, 8, 32};
constexpr double kSecondsPerPoint = 2.0;
constexpr double kQuickSecondsPerPoint = 0.5;
// Allocations each thread keeps alive: a free always has something to free,
// and a pool sees sizes come and go as in a real program.
constexpr size_t kLivePerThread = 4;

struct ThreadTally {
  long long operations = 0;
  long long errors = 0;
};

void churn(int device, uint64_t seed, const std::atomic<bool>& go, const std::atomic<bool>& stop,
           ThreadTally* tally) {
  cudaSetDevice(device);  // every thread on the benchmark's GPU
  SplitMix random(seed);
  std::vector<void*> live(kLivePerThread, nullptr);
  while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
  for (size_t slot = 0; !stop.load(std::memory_order_relaxed); slot = (slot + 1) % live.size()) {
    if (live[slot] != nullptr) {
      if (cudaFree(live[slot]) != cudaSuccess) ++tally->errors;
      live[slot] = nullptr;
      ++tally->operations;
    }
    if (cudaMalloc(&live[slot], random.log_uniform_size(4 * kKiB, 4 * kMiB)) != cudaSuccess) {
      ++tally->errors;
      live[slot] = nullptr;
    }
    ++tally->operations;
  }
  for (void* pointer : live) {
    if (pointer != nullptr) cudaFree(pointer);  // not counted: after the clock stopped
  }
}

JsonObject measure_threads(int device, int threads, double seconds) {
  std::fprintf(stderr, "egm-bench: throughput %d thread(s), %.1f s\n", threads, seconds);
  std::atomic<bool> go{false}, stop{false};
  std::vector<ThreadTally> tallies(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(churn, device, 1000 + t, std::cref(go), std::cref(stop), &tallies[t]);
  }
  double start = now_seconds();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true, std::memory_order_relaxed);
  double elapsed = now_seconds() - start;  // the few ops after `stop` are noise
  for (std::thread& worker : workers) worker.join();
  long long operations = 0, errors = 0;
  for (const ThreadTally& tally : tallies) {
    operations += tally.operations;
    errors += tally.errors;
  }
  JsonObject point;
  return point.integer("threads", threads)
      .number("seconds", elapsed)
      .integer("operations", operations)
      .integer("errors", errors)
      .number("ops_per_s", static_cast<double>(operations) / elapsed);
}

}  // namespace

JsonObject run_throughput(const BenchOptions& options) {
  const double seconds = options.quick ? kQuickSecondsPerPoint : kSecondsPerPoint;
  std::vector<JsonObject> points;
  for (int threads : kThreadCounts) {
    points.push_back(measure_threads(options.device, threads, seconds));
  }
  JsonObject results;
  return results.text("sizes", "log-uniform 4 KiB - 4 MiB")
      .integer("live_per_thread", static_cast<long long>(kLivePerThread))
      .array("points", points);
}

}  // namespace egm::bench
