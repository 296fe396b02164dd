#include "shim/core/managed_calls.h"

#include <fmt/format.h>

#include <vector>

#include "config/apis.h"
#include "shim/core/memory_queries.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

// The managed allocation that holds all of [pointer, +count), if any.
std::optional<Allocation> managed_owner(uintptr_t pointer, size_t count) {
  if (count == 0) return std::nullopt;  // left to the real call's checks
  Allocation owner;
  if (Shim::instance().range_owner(pointer, count, &owner) != RangeOwner::kOne ||
      !is_managed(owner.api)) {
    return std::nullopt;
  }
  return owner;
}

std::string describe(MemoryLocation location) {
  return fmt::format("location_type={} location_id={}", location.type, location.id);
}

// One prefetch (or discard, when `target` is null) of a managed allocation.
int apply_one(const char* call, const Allocation& owner, uintptr_t pointer, size_t count,
              const MemoryLocation* target, unsigned long long flags) {
  Shim& shim = Shim::instance();
  int result = 0;
  if (target == nullptr) {
    result = discard(owner, flags);
  } else {
    int devices = shim.device_count();
    shim.update_hints(owner, [&](ManagedHints& hints) {
      result = prefetch(owner, pointer, count, *target, flags, devices, hints);
    });
  }
  shim.log_emulated(call, owner,
                    fmt::format("offset={} count={} {}", pointer - owner.address, count,
                                target ? describe(*target) : std::string("discard=1")),
                    result);
  return result;
}

// The location index of each entry; false when the arrays are malformed
// (the real call reports that).
bool locations_of_entries(const Batch& batch, std::vector<size_t>& location_of) {
  if (batch.location_count == 0 || batch.location_count > batch.count ||
      batch.location_starts == nullptr || batch.location_starts[0] != 0) {
    return false;
  }
  location_of.assign(batch.count, 0);
  for (size_t k = 0; k < batch.location_count; ++k) {
    size_t begin = batch.location_starts[k];
    size_t end = k + 1 < batch.location_count ? batch.location_starts[k + 1] : batch.count;
    if (begin >= end || end > batch.count) return false;
    for (size_t i = begin; i < end; ++i) location_of[i] = k;
  }
  return true;
}

}  // namespace

std::optional<int> emulate_attach(uintptr_t pointer, size_t length, unsigned flags) {
  Allocation owner;
  Shim& shim = Shim::instance();
  // length 0 means the whole allocation: judged by its start.
  if (shim.range_owner(pointer, length, &owner) != RangeOwner::kOne || !is_managed(owner.api)) {
    return std::nullopt;
  }
  int result = attach_result(owner, pointer, length, flags);
  shim.log_emulated("StreamAttachMemAsync", owner,
                    fmt::format("length={} flags={}", length, flags), result);
  return result;
}

std::optional<int> emulate_prefetch(const char* call, uintptr_t pointer, size_t count,
                                    MemoryLocation target, unsigned long long flags) {
  std::optional<Allocation> owner = managed_owner(pointer, count);
  if (!owner) return std::nullopt;
  return apply_one(call, *owner, pointer, count, &target, flags);
}

std::optional<int> emulate_advise(const char* call, uintptr_t pointer, size_t count, int advice,
                                  MemoryLocation location) {
  std::optional<Allocation> owner = managed_owner(pointer, count);
  if (!owner) return std::nullopt;
  Shim& shim = Shim::instance();
  int devices = shim.device_count();
  int result = 0;
  shim.update_hints(*owner, [&](ManagedHints& hints) {
    result = advise(*owner, pointer, count, advice, location, devices, hints);
  });
  shim.log_emulated(call, *owner,
                    fmt::format("offset={} count={} advice={} {}", pointer - owner->address, count,
                                advice, describe(location)),
                    result);
  return result;
}

std::optional<int> emulate_range_attribute(uintptr_t pointer, size_t count, int attribute,
                                           void* data, size_t data_size) {
  std::optional<Allocation> owner = managed_owner(pointer, count);
  if (!owner) return std::nullopt;
  return range_attribute(*owner, pointer, count, attribute, data, data_size,
                         Shim::instance().physical_pointer_attributes());
}

std::optional<int> emulate_range_attributes(uintptr_t pointer, size_t count, void** data,
                                            const size_t* data_sizes, const int* attributes,
                                            size_t attribute_count) {
  std::optional<Allocation> owner = managed_owner(pointer, count);
  if (!owner) return std::nullopt;
  if (data == nullptr || data_sizes == nullptr || attributes == nullptr || attribute_count == 0) {
    return kInvalidValue;
  }
  bool physical = Shim::instance().physical_pointer_attributes();
  for (size_t i = 0; i < attribute_count; ++i) {
    if (int error = range_attribute(*owner, pointer, count, attributes[i], data[i], data_sizes[i],
                                    physical)) {
      return error;
    }
  }
  return kSuccess;
}

std::optional<int> emulate_batch(const char* call, const Batch& batch, const RealBatch& real) {
  if (batch.count == 0 || batch.pointers == nullptr || batch.sizes == nullptr) return std::nullopt;
  std::vector<size_t> location_of;
  if (batch.locations != nullptr && !locations_of_entries(batch, location_of)) return std::nullopt;
  // Sort the entries: the shim's managed ones, the others, or a reason to
  // leave the whole batch to the real call (which then reports its error).
  std::vector<std::optional<Allocation>> owners(batch.count);
  bool any_ours = false;
  Shim& shim = Shim::instance();
  for (size_t i = 0; i < batch.count; ++i) {
    Allocation owner;
    RangeOwner found = shim.range_owner(batch.pointers[i], batch.sizes[i], &owner);
    if (found == RangeOwner::kNone) continue;
    if (found == RangeOwner::kMixed || !is_managed(owner.api) || batch.sizes[i] == 0) {
      return std::nullopt;
    }
    owners[i] = owner;
    any_ours = true;
  }
  if (!any_ours) return std::nullopt;
  for (size_t i = 0; i < batch.count; ++i) {
    if (!owners[i]) continue;
    const MemoryLocation* target =
        batch.locations != nullptr ? &batch.locations[location_of[i]] : nullptr;
    if (int error = apply_one(call, *owners[i], batch.pointers[i], batch.sizes[i], target,
                              batch.flags)) {
      return error;
    }
  }
  // The rest as a batch of their own, each location run re-indexed.
  std::vector<uintptr_t> pointers;
  std::vector<size_t> sizes, starts;
  std::vector<MemoryLocation> locations;
  size_t run = SIZE_MAX;  // the location index of the current run
  for (size_t i = 0; i < batch.count; ++i) {
    if (owners[i]) continue;
    if (batch.locations != nullptr && location_of[i] != run) {
      run = location_of[i];
      starts.push_back(pointers.size());
      locations.push_back(batch.locations[run]);
    }
    pointers.push_back(batch.pointers[i]);
    sizes.push_back(batch.sizes[i]);
  }
  if (pointers.empty()) return kSuccess;
  Batch rest = batch;
  rest.pointers = pointers.data();
  rest.sizes = sizes.data();
  rest.count = pointers.size();
  if (batch.locations != nullptr) {
    rest.locations = locations.data();
    rest.location_starts = starts.data();
    rest.location_count = locations.size();
  }
  return real(rest);
}

}  // namespace egm
