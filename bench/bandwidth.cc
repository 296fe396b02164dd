// Section 2: GPU kernel read and write bandwidth over memory from cudaMalloc
// (HBM, or host memory under the shim), cudaHostAlloc (mapped pinned host
// memory: what the shim should match) and cudaMallocManaged.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <functional>
#include <vector>

#include "bench/bench_kernels.h"
#include "bench/driver_egm.h"
#include "bench/sections.h"
#include "bench/stats.h"

namespace egm::bench {
namespace {

constexpr size_t kBufferBytes = 2 * kGiB;
constexpr size_t kQuickBufferBytes = 256 * kMiB;
constexpr int kReps = 10;
constexpr int kQuickReps = 2;

struct Buffer {
  void* device_pointer = nullptr;  // what the kernels get
  void* allocation = nullptr;      // what is freed
  std::string location;
  std::string error;
};

Buffer allocate_device(size_t bytes) {
  Buffer buffer;
  cudaError_t error = cudaMalloc(&buffer.allocation, bytes);
  if (error != cudaSuccess) buffer.error = "cudaMalloc: " + runtime_error_text(error);
  buffer.device_pointer = buffer.allocation;
  if (error == cudaSuccess) buffer.location = memory_location(buffer.allocation);
  return buffer;
}

Buffer allocate_host_mapped(size_t bytes) {
  Buffer buffer;
  cudaError_t error = cudaHostAlloc(&buffer.allocation, bytes, cudaHostAllocMapped);
  if (error != cudaSuccess) {
    buffer.error = "cudaHostAlloc: " + runtime_error_text(error);
    return buffer;
  }
  error = cudaHostGetDevicePointer(&buffer.device_pointer, buffer.allocation, 0);
  if (error != cudaSuccess) buffer.error = "cudaHostGetDevicePointer: " + runtime_error_text(error);
  buffer.location = "pinned-host";
  return buffer;
}

Buffer allocate_managed(size_t bytes) {
  Buffer buffer;
  cudaError_t error = cudaMallocManaged(&buffer.allocation, bytes, cudaMemAttachGlobal);
  if (error != cudaSuccess) buffer.error = "cudaMallocManaged: " + runtime_error_text(error);
  buffer.device_pointer = buffer.allocation;
  if (error == cudaSuccess) {
    buffer.location = memory_location(buffer.allocation);
    if (buffer.location == "device") buffer.location = "managed";  // migrates on touch
  }
  return buffer;
}

void release(const Buffer& buffer, bool host_alloc) {
  if (buffer.allocation == nullptr) return;
  if (host_alloc) {
    cudaFreeHost(buffer.allocation);
  } else {
    cudaFree(buffer.allocation);
  }
}

// Milliseconds per launch: one warm-up launch (first touch, page migration of
// managed memory), then `reps` launches timed one by one with events.
std::vector<double> time_launches(const std::function<cudaError_t()>& launch, int reps,
                                  std::string* error) {
  std::vector<double> milliseconds;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaError_t status = launch();
  if (status == cudaSuccess) status = cudaDeviceSynchronize();
  for (int rep = 0; rep < reps && status == cudaSuccess; ++rep) {
    cudaEventRecord(start);
    status = launch();
    cudaEventRecord(stop);
    if (status == cudaSuccess) status = cudaEventSynchronize(stop);
    float elapsed = 0;
    if (status == cudaSuccess) status = cudaEventElapsedTime(&elapsed, start, stop);
    milliseconds.push_back(elapsed);
  }
  if (status != cudaSuccess) *error = runtime_error_text(status);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return milliseconds;
}

double gigabytes_per_second(size_t bytes, double milliseconds) {
  return milliseconds > 0 ? static_cast<double>(bytes) / (milliseconds * 1e-3) / 1e9 : 0;
}

JsonObject measure_buffer(const char* memory, const Buffer& buffer, size_t bytes, int reps,
                          void* scratch) {
  JsonObject point;
  point.text("memory", memory).text("location", buffer.location);
  if (!buffer.error.empty()) return point.text("error", buffer.error);
  std::string error;
  // Write first: it also initializes the memory that the reads then see.
  Summary write = summarize(time_launches(
      [&] { return launch_write(buffer.device_pointer, bytes, 0x5a5a5a5au); }, reps, &error));
  Summary read = summarize(time_launches(
      [&] { return launch_read_reduce(buffer.device_pointer, bytes, scratch); }, reps, &error));
  if (!error.empty()) return point.text("error", error);
  // Median time gives the median rate; min time the best one.
  return point.integer("reps", static_cast<long long>(read.count))
      .number("read_gbs", gigabytes_per_second(bytes, read.median))
      .number("read_best_gbs", gigabytes_per_second(bytes, read.min))
      .number("write_gbs", gigabytes_per_second(bytes, write.median))
      .number("write_best_gbs", gigabytes_per_second(bytes, write.min));
}

}  // namespace

JsonObject run_bandwidth(const BenchOptions& options) {
  const size_t bytes = options.quick ? kQuickBufferBytes : kBufferBytes;
  const int reps = options.quick ? kQuickReps : kReps;
  JsonObject results;
  results.integer("bytes", static_cast<long long>(bytes)).integer("blocks", bandwidth_blocks());
  // The per-block results of the read kernel: a few KiB, wherever they land.
  void* scratch = nullptr;
  cudaError_t error = cudaMalloc(&scratch, read_reduce_scratch_bytes());
  if (error != cudaSuccess) return results.text("error", "scratch: " + runtime_error_text(error));

  std::vector<JsonObject> points;
  struct Kind {
    const char* memory;
    Buffer (*allocate)(size_t);
    bool host_alloc;
  };
  const Kind kinds[] = {{"cudaMalloc", allocate_device, false},
                        {"cudaHostAlloc", allocate_host_mapped, true},
                        {"cudaMallocManaged", allocate_managed, false}};
  // One buffer at a time, so that a 2 GiB run needs 2 GiB of each kind only.
  for (const Kind& kind : kinds) {
    std::fprintf(stderr, "egm-bench: bandwidth %s %zu bytes\n", kind.memory, bytes);
    Buffer buffer = kind.allocate(bytes);
    points.push_back(measure_buffer(kind.memory, buffer, bytes, reps, scratch));
    release(buffer, kind.host_alloc);
  }
  cudaFree(scratch);
  return results.array("points", points);
}

}  // namespace egm::bench
