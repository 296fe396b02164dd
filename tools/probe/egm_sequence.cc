#include "tools/probe/egm_sequence.h"

#include <chrono>
#include <vector>

#include "shim/core/vmm_descriptors.h"
#include "tools/probe/cpu_access.h"

namespace egm::probe {
namespace {

constexpr unsigned kGpuPatternSeed = 1;
constexpr unsigned kCpuPatternSeed = 2;
constexpr const char* kMissingEntryPoint = "not exported by libcuda.so.1";

double microseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

// Records each step; once one fails, the later forward steps are skipped
// but cleanups still run.
class StepRecorder {
 public:
  StepRecorder(const CudaDriver& cuda, std::vector<Step>& steps) : cuda_(cuda), steps_(steps) {}

  // Calls `function(args...)` unless an earlier step failed; true on success.
  template <typename Function, typename... Args>
  bool call(const char* name, Function function, Args... args) {
    if (failed_) return skip(name);
    return record(name, false, function, args...);
  }

  // Undoes an earlier step: runs even after a failure.
  template <typename Function, typename... Args>
  void cleanup(const char* name, Function function, Args... args) {
    record(name, true, function, args...);
  }

  // A check of the probe's own (`check` returns "" when fine, else the problem).
  template <typename Check>
  bool check(const char* name, Check check) {
    if (failed_) return skip(name);
    auto start = std::chrono::steady_clock::now();
    std::string problem = check();
    return add({name, problem.empty() ? StepStatus::kOk : StepStatus::kFailed,
                problem.empty() ? "ok" : problem, microseconds_since(start), false});
  }

 private:
  template <typename Function, typename... Args>
  bool record(const char* name, bool cleanup, Function function, Args... args) {
    if (function == nullptr)
      return add({name, StepStatus::kFailed, kMissingEntryPoint, 0, cleanup});
    auto start = std::chrono::steady_clock::now();
    CUresult result = function(args...);
    double time_us = microseconds_since(start);
    StepStatus status = result == CUDA_SUCCESS ? StepStatus::kOk : StepStatus::kFailed;
    return add({name, status, cuda_.error_name(result), time_us, cleanup});
  }

  bool skip(const char* name) {
    add({name, StepStatus::kSkipped, "", 0, false});
    return false;
  }

  bool add(Step step) {
    bool ok = step.status == StepStatus::kOk;
    failed_ = failed_ || step.status == StepStatus::kFailed;
    steps_.push_back(std::move(step));
    return ok;
  }

  const CudaDriver& cuda_;
  std::vector<Step>& steps_;
  bool failed_ = false;
};

// What the trial holds and must give back.
struct Held {
  CUdevice device = 0;
  CUcontext context = nullptr;
  CUmemGenericAllocationHandle handle = 0;
  bool handle_created = false;
  CUdeviceptr address = 0;
  bool mapped = false;
  size_t size = 0;
};

size_t round_up(size_t bytes, size_t unit) {
  return unit == 0 ? bytes : (bytes + unit - 1) / unit * unit;
}

std::string mismatch_problem(const std::vector<unsigned char>& buffer, unsigned seed) {
  size_t index = first_pattern_mismatch(buffer.data(), buffer.size(), seed);
  if (index == buffer.size()) return "";
  return "byte " + std::to_string(index) + " differs from what was written";
}

// The context and the memory, up to cuMemSetAccess; fills `held`.
void acquire(const CudaDriver& cuda, StepRecorder& steps, Held& held, int gpu, int node,
             Trial& trial) {
  steps.call("cuDeviceGet", cuda.device_get, &held.device, gpu);
  if (!steps.call("cuDevicePrimaryCtxRetain", cuda.primary_ctx_retain, &held.context, held.device))
    held.context = nullptr;
  steps.call("cuCtxSetCurrent", cuda.ctx_set_current, held.context);
  CUmemAllocationProp prop = egm::host_numa_properties(node);
  size_t granularity = 0;
  steps.call("cuMemGetAllocationGranularity", cuda.mem_get_allocation_granularity, &granularity,
             static_cast<const CUmemAllocationProp*>(&prop), CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  held.size = trial.mapped_bytes = round_up(trial.requested_bytes, granularity);
  held.handle_created = steps.call("cuMemCreate", cuda.mem_create, &held.handle, held.size,
                                   static_cast<const CUmemAllocationProp*>(&prop), 0ULL);
  steps.call("cuMemAddressReserve", cuda.mem_address_reserve, &held.address, held.size, size_t{0},
             CUdeviceptr{0}, 0ULL);
  held.mapped =
      steps.call("cuMemMap", cuda.mem_map, held.address, held.size, size_t{0}, held.handle, 0ULL);
  // Over the whole mapped range, as the shim does, for the GPU and the node's CPUs.
  CUmemAccessDesc access[] = {egm::read_write_for(CU_MEM_LOCATION_TYPE_DEVICE, held.device),
                              egm::read_write_for(CU_MEM_LOCATION_TYPE_HOST_NUMA, node)};
  steps.call("cuMemSetAccess", cuda.mem_set_access, held.address, held.size,
             static_cast<const CUmemAccessDesc*>(access), size_t{2});
}

// GPU copies in and out, then CPU loads and stores, then the GPU's view of them.
void exercise(const CudaDriver& cuda, StepRecorder& steps, const Held& held) {
  std::vector<unsigned char> pattern(held.size);
  fill_pattern(pattern.data(), pattern.size(), kGpuPatternSeed);
  std::vector<unsigned char> copy(held.size, 0);
  steps.call("cuMemcpyHtoD", cuda.memcpy_htod, held.address,
             static_cast<const void*>(pattern.data()), held.size);
  steps.call("cuMemcpyDtoH", cuda.memcpy_dtoh, static_cast<void*>(copy.data()), held.address,
             held.size);
  steps.check("compare GPU copy", [&] { return mismatch_problem(copy, kGpuPatternSeed); });
  void* cpu_view = reinterpret_cast<void*>(static_cast<uintptr_t>(held.address));
  steps.check("CPU read/write", [&] {
    return cpu_access_problem(cpu_view, held.size, kGpuPatternSeed, kCpuPatternSeed);
  });
  steps.call("cuMemcpyDtoH", cuda.memcpy_dtoh, static_cast<void*>(copy.data()), held.address,
             held.size);
  steps.check("compare CPU write", [&] { return mismatch_problem(copy, kCpuPatternSeed); });
}

// Undoes what `held` holds, in the shim's order.
void release(const CudaDriver& cuda, StepRecorder& steps, const Held& held) {
  if (held.mapped) steps.cleanup("cuMemUnmap", cuda.mem_unmap, held.address, held.size);
  if (held.handle_created) steps.cleanup("cuMemRelease", cuda.mem_release, held.handle);
  if (held.address != 0) {
    steps.cleanup("cuMemAddressFree", cuda.mem_address_free, held.address, held.size);
  }
  if (held.context != nullptr) {
    steps.cleanup("cuDevicePrimaryCtxRelease", cuda.primary_ctx_release, held.device);
  }
}

}  // namespace

bool Trial::works() const {
  for (const Step& step : steps) {
    if (step.status != StepStatus::kOk) return false;
  }
  return !steps.empty();
}

const Step* Trial::first_failure() const {
  for (const Step& step : steps) {
    if (step.status == StepStatus::kFailed) return &step;
  }
  return nullptr;
}

Trial run_egm_sequence(const CudaDriver& cuda, int gpu, int node, size_t requested_bytes) {
  Trial trial;
  trial.gpu = gpu;
  trial.node = node;
  trial.requested_bytes = requested_bytes;
  StepRecorder steps(cuda, trial.steps);
  Held held;
  acquire(cuda, steps, held, gpu, node, trial);
  exercise(cuda, steps, held);
  release(cuda, steps, held);
  return trial;
}

const char* status_name(StepStatus status) {
  switch (status) {
    case StepStatus::kOk: return "ok";
    case StepStatus::kFailed: return "failed";
    case StepStatus::kSkipped: return "skipped";
  }
  return "?";
}

}  // namespace egm::probe
