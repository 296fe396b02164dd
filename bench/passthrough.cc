// Section 3: the cost of calls that the shim intercepts but hands on to the
// runtime (cudaFree(nullptr); a 256 B cudaMalloc under EGM_MIN_SIZE and its
// cudaFree). Measured two ways:
//  - across processes: run once without and once with the shim; report.py
//    subtracts the medians. Precise for the cheap cudaFree(nullptr).
//  - within one process: the same malloc/free pairs through the exported
//    cudaMalloc/cudaFree (the shim's, when preloaded) and through
//    libcudart's own entry points (dlsym on its handle), in alternating
//    blocks. A real cudaMalloc+cudaFree costs tens of microseconds and
//    drifts between processes by more than the shim's share; paired blocks
//    cancel that drift. Without the shim both are the same function: the
//    result is then the noise floor.
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "bench/driver_egm.h"
#include "bench/sections.h"
#include "bench/stats.h"

namespace egm::bench {
namespace {

constexpr int kRounds = 5;
// 5 rounds of 200 000: 1M cudaFree(nullptr) calls.
constexpr long kFreeNullCallsPerRound = 200000;
// Malloc/free pairs per round, at most; fewer when a pair is slow, so that
// the rounds take about kPairRoundSeconds each.
constexpr long kMaxPairsPerRound = 100000;
constexpr double kPairRoundSeconds = 0.8;
// Paired blocks: pairs per block and the time for all blocks.
constexpr long kPairsPerBlock = 50;
constexpr double kPairedSeconds = 6;
constexpr int kQuickDivisor = 10;
// Below EGM_MIN_SIZE (run_bench.sh sets 4K), so the shim hands it on.
constexpr size_t kSmallBytes = 256;

using MallocFunction = cudaError_t (*)(void**, size_t);
using FreeFunction = cudaError_t (*)(void*);

struct AllocatorCalls {
  MallocFunction malloc = nullptr;
  FreeFunction free = nullptr;
};

// Whatever cudaMalloc/cudaFree resolve to: the shim's when it is preloaded.
AllocatorCalls exported_calls() { return {&cudaMalloc, &cudaFree}; }

// libcudart's own definitions, bypassing any preloaded override. dlsym on
// libcudart's handle searches libcudart first, not the global scope.
AllocatorCalls runtime_own_calls() {
  AllocatorCalls calls;
  void* runtime = dlopen("libcudart.so.13", RTLD_NOW | RTLD_NOLOAD);
  if (runtime == nullptr) return calls;
  calls.malloc = reinterpret_cast<MallocFunction>(dlsym(runtime, "cudaMalloc"));
  calls.free = reinterpret_cast<FreeFunction>(dlsym(runtime, "cudaFree"));
  return calls;
}

double free_null_ns_per_call(long calls, std::string* error) {
  double start = now_seconds();
  for (long i = 0; i < calls; ++i) {
    cudaError_t status = cudaFree(nullptr);
    if (status != cudaSuccess) {
      *error = "cudaFree(nullptr): " + runtime_error_text(status);
      break;
    }
  }
  return (now_seconds() - start) * 1e9 / static_cast<double>(calls);
}

double pairs_ns_per_pair(const AllocatorCalls& calls, long pairs, std::string* error) {
  double start = now_seconds();
  for (long i = 0; i < pairs; ++i) {
    void* pointer = nullptr;
    cudaError_t status = calls.malloc(&pointer, kSmallBytes);
    if (status == cudaSuccess) status = calls.free(pointer);
    if (status != cudaSuccess) {
      *error = "cudaMalloc/cudaFree(256 B): " + runtime_error_text(status);
      break;
    }
  }
  return (now_seconds() - start) * 1e9 / static_cast<double>(pairs);
}

// Pairs per round so that a round takes about `seconds`.
long pairs_per_round(double seconds, long cap, std::string* error) {
  double ns = pairs_ns_per_pair(exported_calls(), 200, error);
  long fitting = static_cast<long>(seconds * 1e9 / std::max(ns, 1.0));
  return std::clamp<long>(fitting, 100, cap);
}

// Where the small request lands: it must stay on the device for this to
// measure pass-through rather than redirection.
std::string small_request_location() {
  void* pointer = nullptr;
  if (cudaMalloc(&pointer, kSmallBytes) != cudaSuccess) return "allocation failed";
  std::string location = memory_location(pointer);
  cudaFree(pointer);
  return location;
}

JsonObject summarize_rounds(const char* unit_key, long per_round, const std::vector<double>& ns) {
  Summary summary = summarize(ns);
  JsonObject point;
  return point.integer(unit_key, per_round * static_cast<long>(summary.count))
      .integer("rounds", static_cast<long long>(summary.count))
      .number("median_ns", summary.median)
      .number("min_ns", summary.min)
      .number("max_ns", summary.max);
}

// Exported minus runtime-own ns per pair, over blocks run in ABBA order.
JsonObject paired_blocks(double seconds, std::string* error) {
  JsonObject result;
  const AllocatorCalls own = runtime_own_calls();
  const AllocatorCalls exported = exported_calls();
  if (own.malloc == nullptr || own.free == nullptr) {
    return result.text("error", "libcudart.so.13's own cudaMalloc/cudaFree not found");
  }
  std::vector<double> deltas, own_ns, exported_ns;
  double start = now_seconds();
  for (int block = 0; now_seconds() - start < seconds && error->empty(); ++block) {
    bool own_first = block % 2 == 0;
    double first = pairs_ns_per_pair(own_first ? own : exported, kPairsPerBlock, error);
    double second = pairs_ns_per_pair(own_first ? exported : own, kPairsPerBlock, error);
    double own_block = own_first ? first : second;
    double exported_block = own_first ? second : first;
    own_ns.push_back(own_block);
    exported_ns.push_back(exported_block);
    deltas.push_back(exported_block - own_block);
  }
  Summary delta = summarize(deltas);
  return result.boolean("same_function", own.malloc == exported.malloc && own.free == exported.free)
      .integer("pairs_each_side", static_cast<long long>(deltas.size()) * kPairsPerBlock)
      .integer("blocks", static_cast<long long>(deltas.size()))
      .number("own_median_ns", summarize(own_ns).median)
      .number("exported_median_ns", summarize(exported_ns).median)
      .number("delta_median_ns", delta.median);
}

}  // namespace

JsonObject run_passthrough(const BenchOptions& options) {
  const int divisor = options.quick ? kQuickDivisor : 1;
  std::string error;
  // Kept for the whole section: with one small allocation alive, the
  // runtime keeps its small-allocation page, and a pair does not map and
  // unmap one each time (which costs ~90 us and buries the shim's share).
  void* keeper = nullptr;
  cudaMalloc(&keeper, kSmallBytes);
  const long free_calls = kFreeNullCallsPerRound / divisor;
  const long pairs = pairs_per_round(kPairRoundSeconds / divisor, kMaxPairsPerRound, &error);
  std::vector<double> free_ns, pair_ns;
  // Rounds alternate the two kinds so that drifts (clock, other load) hit both.
  for (int round = 0; round < kRounds && error.empty(); ++round) {
    std::fprintf(stderr, "egm-bench: pass-through round %d of %d\n", round + 1, kRounds);
    free_ns.push_back(free_null_ns_per_call(free_calls, &error));
    pair_ns.push_back(pairs_ns_per_pair(exported_calls(), pairs, &error));
  }
  std::fprintf(stderr, "egm-bench: pass-through paired blocks\n");
  JsonObject paired = paired_blocks(kPairedSeconds / divisor, &error);
  JsonObject results;
  results.integer("small_bytes", static_cast<long long>(kSmallBytes))
      .text("small_location", small_request_location())
      .object("free_null", summarize_rounds("calls", free_calls, free_ns))
      .object("malloc_free_pair", summarize_rounds("pairs", pairs, pair_ns))
      .object("paired", paired);
  if (!error.empty()) results.text("error", error);
  cudaFree(keeper);
  return results;
}

}  // namespace egm::bench
