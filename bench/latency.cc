// Section 1: allocate+free latency by size, through the runtime (cudaMalloc,
// the shim when preloaded) or through the raw EGM sequence.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "bench/driver_egm.h"
#include "bench/sections.h"
#include "bench/stats.h"

namespace egm::bench {
namespace {

struct SizePlan {
  size_t bytes;
  int reps;
  int quick_reps;  // 0: skipped by --quick
};

// Fewer repetitions where one allocation pins gigabytes (~0.3 s per GiB).
constexpr SizePlan kSizePlans[] = {
    {4 * kKiB, 100, 20}, {64 * kKiB, 100, 20}, {2 * kMiB, 100, 20},
    {64 * kMiB, 20, 5},  {1 * kGiB, 5, 2},     {8 * kGiB, 3, 0},
};
constexpr double kPointSecondsCap = 10;
constexpr double kQuickPointSecondsCap = 2;

// What is being timed: one way to allocate and free.
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual std::string name() const = 0;
  virtual std::string allocate(size_t bytes, void** pointer) = 0;  // "" on success
  virtual std::string release(void* pointer) = 0;
  // Bytes actually mapped for a request, where this side knows them; 0 if not.
  virtual size_t padded_bytes(size_t) const { return 0; }
};

class RuntimeAllocator : public Allocator {
 public:
  std::string name() const override { return "cudaMalloc"; }
  std::string allocate(size_t bytes, void** pointer) override {
    cudaError_t error = cudaMalloc(pointer, bytes);
    return error == cudaSuccess ? "" : "cudaMalloc: " + runtime_error_text(error);
  }
  std::string release(void* pointer) override {
    cudaError_t error = cudaFree(pointer);
    return error == cudaSuccess ? "" : "cudaFree: " + runtime_error_text(error);
  }
};

class RawEgmAllocator : public Allocator {
 public:
  explicit RawEgmAllocator(const RawEgm& egm) : egm_(egm) {}
  std::string name() const override { return "raw-egm"; }
  std::string allocate(size_t bytes, void** pointer) override {
    const char* step = "";
    CUresult result = egm_.map(bytes, &mapping_, &step);
    if (result != CUDA_SUCCESS) return std::string(step) + ": " + driver_error_name(result);
    *pointer = reinterpret_cast<void*>(mapping_.address);
    return "";
  }
  std::string release(void*) override {
    CUresult result = egm_.unmap(mapping_);
    return result == CUDA_SUCCESS ? "" : "unmap: " + driver_error_name(result);
  }
  size_t padded_bytes(size_t bytes) const override { return egm_.padded(bytes); }

 private:
  const RawEgm& egm_;
  RawMapping mapping_;  // one live mapping at a time
};

struct Cycle {
  double alloc_us = 0;
  double free_us = 0;
  std::string error;
};

Cycle time_cycle(Allocator& allocator, size_t bytes, std::string* location) {
  Cycle cycle;
  void* pointer = nullptr;
  double start = now_seconds();
  cycle.error = allocator.allocate(bytes, &pointer);
  double allocated = now_seconds();
  if (!cycle.error.empty()) return cycle;
  if (location != nullptr) *location = memory_location(pointer);
  double release_start = now_seconds();  // the location probe is not timed
  cycle.error = allocator.release(pointer);
  cycle.alloc_us = (allocated - start) * 1e6;
  cycle.free_us = (now_seconds() - release_start) * 1e6;
  return cycle;
}

JsonObject measure_size(Allocator& allocator, const SizePlan& plan, bool quick) {
  JsonObject point;
  point.integer("bytes", static_cast<long long>(plan.bytes));
  if (size_t padded = allocator.padded_bytes(plan.bytes)) {
    point.integer("padded_bytes", static_cast<long long>(padded));
  }
  // The warm-up cycle is not counted: it fills pools and shows where memory lands.
  std::string location;
  Cycle warm_up = time_cycle(allocator, plan.bytes, &location);
  if (!warm_up.error.empty()) return point.text("error", warm_up.error);
  point.text("location", location);
  const int reps = quick ? plan.quick_reps : plan.reps;
  const double cap = quick ? kQuickPointSecondsCap : kPointSecondsCap;
  std::vector<double> total_us, alloc_us, free_us;
  double start = now_seconds();
  for (int rep = 0; rep < reps && (rep == 0 || now_seconds() - start < cap); ++rep) {
    Cycle cycle = time_cycle(allocator, plan.bytes, nullptr);
    if (!cycle.error.empty()) return point.text("error", cycle.error);
    total_us.push_back(cycle.alloc_us + cycle.free_us);
    alloc_us.push_back(cycle.alloc_us);
    free_us.push_back(cycle.free_us);
  }
  Summary total = summarize(total_us);
  return point.integer("reps", static_cast<long long>(total.count))
      .number("median_us", total.median)
      .number("p90_us", total.p90)
      .number("min_us", total.min)
      .number("alloc_median_us", summarize(alloc_us).median)
      .number("free_median_us", summarize(free_us).median);
}

JsonObject measure_all_sizes(Allocator& allocator, const BenchOptions& options) {
  std::vector<JsonObject> points;
  for (const SizePlan& plan : kSizePlans) {
    if (options.quick && plan.quick_reps == 0) continue;
    std::fprintf(stderr, "egm-bench: latency %s %zu bytes\n", allocator.name().c_str(), plan.bytes);
    points.push_back(measure_size(allocator, plan, options.quick));
  }
  JsonObject results;
  return results.text("mode", allocator.name()).array("points", points);
}

}  // namespace

JsonObject run_runtime_latency(const BenchOptions& options) {
  RuntimeAllocator allocator;
  return measure_all_sizes(allocator, options);
}

JsonObject run_raw_egm_latency(const BenchOptions& options) {
  RawEgm egm;
  std::string error;
  if (!egm.init(options.device, &error)) {
    JsonObject results;
    return results.text("mode", "raw-egm").text("error", error);
  }
  RawEgmAllocator allocator(egm);
  return measure_all_sizes(allocator, options)
      .integer("node", egm.node())
      .integer("granularity", static_cast<long long>(egm.granularity()));
}

}  // namespace egm::bench
