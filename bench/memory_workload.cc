// Section 4: allocation patterns whose pinned footprint report.py reads from
// the shim's log (mapped bytes / requested bytes). This process only
// allocates, holds everything at once, and frees.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "bench/sections.h"
#include "bench/stats.h"

namespace egm::bench {
namespace {

constexpr uint64_t kMixSeed = 20261124;

struct SizeClass {
  long count;
  long quick_count;
  size_t low;
  size_t high;
};

// Many small tensors, some activations, a few large weight/optimizer blocks.
constexpr SizeClass kPyTorchLikeMix[] = {
    {4000, 400, 512, 1 * kMiB},
    {60, 6, 2 * kMiB, 20 * kMiB},
    {4, 1, 100 * kMiB, 1 * kGiB},
};

constexpr long k4KiBCount = 10000;
constexpr long k4KiBQuickCount = 1000;

std::vector<size_t> pytorch_like_sizes(bool quick) {
  SplitMix random(kMixSeed);
  std::vector<size_t> sizes;
  for (const SizeClass& size_class : kPyTorchLikeMix) {
    long count = quick ? size_class.quick_count : size_class.count;
    for (long i = 0; i < count; ++i) {
      sizes.push_back(random.log_uniform_size(size_class.low, size_class.high));
    }
  }
  // Interleave the classes, as a program's allocations are (Fisher-Yates).
  for (size_t i = sizes.size(); i > 1; --i) {
    std::swap(sizes[i - 1], sizes[random.next() % i]);
  }
  return sizes;
}

JsonObject allocate_hold_free(const char* workload, const std::vector<size_t>& sizes) {
  std::fprintf(stderr, "egm-bench: memory %s, %zu allocations\n", workload, sizes.size());
  std::vector<void*> pointers;
  pointers.reserve(sizes.size());
  long long requested = 0, failed = 0;
  std::string first_error;
  double start = now_seconds();
  for (size_t size : sizes) {
    void* pointer = nullptr;
    cudaError_t error = cudaMalloc(&pointer, size);
    if (error != cudaSuccess) {
      ++failed;
      if (first_error.empty()) first_error = runtime_error_text(error);
      continue;
    }
    requested += static_cast<long long>(size);
    pointers.push_back(pointer);
  }
  double allocated = now_seconds();
  for (void* pointer : pointers) cudaFree(pointer);
  JsonObject results;
  results.text("workload", workload)
      .integer("allocations", static_cast<long long>(sizes.size()))
      .integer("failed", failed)
      .integer("requested_bytes", requested)
      .integer("seed", static_cast<long long>(kMixSeed))
      .number("allocate_seconds", allocated - start)
      .number("free_seconds", now_seconds() - allocated);
  if (!first_error.empty()) results.text("error", first_error);
  return results;
}

}  // namespace

uint64_t SplitMix::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

size_t SplitMix::log_uniform_size(size_t low, size_t high) {
  double log_low = std::log(static_cast<double>(low));
  double log_high = std::log(static_cast<double>(high));
  auto size = static_cast<size_t>(std::exp(log_low + unit() * (log_high - log_low)));
  size = std::clamp(size, low, high);
  return (size + 511) / 512 * 512;
}

JsonObject run_memory_4k(const BenchOptions& options) {
  return allocate_hold_free(
      "4k", std::vector<size_t>(options.quick ? k4KiBQuickCount : k4KiBCount, 4 * kKiB));
}

JsonObject run_memory_mix(const BenchOptions& options) {
  return allocate_hold_free("mix", pytorch_like_sizes(options.quick));
}

}  // namespace egm::bench
