#include "shim/core/spill_rule.h"

#include <algorithm>

namespace egm {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGiB = size_t{1} << 30;

size_t power_of_two_at_most(size_t value) {
  size_t power = 1;
  while (power <= value / 2) power *= 2;
  return power;
}

}  // namespace

size_t auto_spill_min_size(size_t device_total) {
  size_t share = power_of_two_at_most(std::max<size_t>(device_total / 2048, 1));
  return std::clamp(share, 8 * kMiB, 256 * kMiB);
}

size_t auto_device_reserve(size_t device_total) {
  return std::max(device_total / 128 / kMiB * kMiB, kGiB);
}

SpillDecision decide_spill(size_t request, const DeviceMemory& memory,
                           std::optional<size_t> spill_min_size,
                           std::optional<size_t> device_reserve) {
  SpillDecision decision;
  decision.spill_min_size = spill_min_size.value_or(auto_spill_min_size(memory.total));
  decision.device_reserve = device_reserve.value_or(auto_device_reserve(memory.total));
  bool room = memory.free >= request && memory.free - request >= decision.device_reserve;
  if (room) {
    decision.try_device = true;
    decision.reason = "spill-room";
  } else if (request < decision.spill_min_size) {
    // Small requests may use half of the reserve; the other half stays free
    // for what the shim never sees (CUDA's and libraries' own device memory:
    // cuDNN failed on a device the small requests had filled).
    bool above_floor = memory.free >= request &&
                       memory.free - request >= decision.device_reserve / 2;
    decision.try_device = above_floor || memory.total == 0;  // unknown: the call decides
    decision.reason = decision.try_device ? "below-spill-size" : "reserve-floor";
  } else {
    decision.reason = "above-spill-size";
  }
  return decision;
}

}  // namespace egm
