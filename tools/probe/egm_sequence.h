// One live run of the EGM sequence on a GPU and a host NUMA node, step by
// step, undoing whatever was done however far it got.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <string>
#include <vector>

#include "tools/probe/cuda_driver.h"

namespace egm::probe {

enum class StepStatus { kOk, kFailed, kSkipped };

struct Step {
  std::string name;  // the driver call ("cuMemMap") or check ("compare GPU copy")
  StepStatus status = StepStatus::kSkipped;
  std::string result;  // CUDA error name, or what a check found; "" when skipped
  double time_us = 0;
  bool cleanup = false;  // undoes an earlier step
};

struct Trial {
  int gpu = 0;
  int node = 0;
  size_t requested_bytes = 0;
  size_t mapped_bytes = 0;  // requested, rounded up to the node's minimum granularity
  std::vector<Step> steps;

  // Every step, the cleanup included, succeeded.
  bool works() const;
  // The first step that failed, or nullptr.
  const Step* first_failure() const;
};

// Runs cuDevicePrimaryCtxRetain + cuCtxSetCurrent, cuMemCreate (HOST_NUMA
// `node`) -> cuMemAddressReserve -> cuMemMap -> cuMemSetAccess (device and
// host node), copies a pattern in and out, reads and writes it from the CPU,
// then cuMemUnmap -> cuMemRelease -> cuMemAddressFree -> primary context release.
Trial run_egm_sequence(const CudaDriver& cuda, int gpu, int node, size_t requested_bytes);

const char* status_name(StepStatus status);

}  // namespace egm::probe
