#include "tests/unit/fake_driver_table.h"

#include <cstdio>

namespace egm::fake_driver {
namespace {

FakeDriverTable* installed = nullptr;

std::string hex(uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof(text), "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

const char* step_name(Step step) {
  static const char* const kNames[kStepCount] = {"cuMemGetAllocationGranularity",
                                                 "cuMemCreate",
                                                 "cuMemAddressReserve",
                                                 "cuMemMap",
                                                 "cuMemSetAccess",
                                                 "cuMemUnmap",
                                                 "cuMemRelease",
                                                 "cuMemAddressFree"};
  return kNames[static_cast<int>(step)];
}

// The driver entry points: each checks its arguments against the model.
struct FakeCalls {
  static FakeDriverTable& fake() { return *installed; }

  static CUresult granularity(size_t* granularity, const CUmemAllocationProp* properties,
                              CUmemAllocationGranularity_flags option) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (properties != nullptr) f.granularity_props_ = *properties;
    f.granularity_option_ = option;
    if (CUresult error = f.injected(Step::kGranularity)) {
      return f.record(Step::kGranularity, 0, 0, error);
    }
    if (granularity == nullptr || properties == nullptr) {
      return f.reject(Step::kGranularity, 0, 0, "null argument");
    }
    *granularity = f.granularity_;
    return f.record(Step::kGranularity, 0, f.granularity_, CUDA_SUCCESS);
  }

  static CUresult create(CUmemGenericAllocationHandle* handle, size_t size,
                         const CUmemAllocationProp* properties, unsigned long long flags) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (CUresult error = f.injected(Step::kCreate)) return f.record(Step::kCreate, 0, size, error);
    if (handle == nullptr || properties == nullptr || flags != 0) {
      return f.reject(Step::kCreate, 0, size, "bad argument");
    }
    if (size == 0 || size % f.granularity_ != 0) {
      return f.reject(Step::kCreate, 0, size, "size not a multiple of the granularity");
    }
    *handle = f.next_handle_++;
    f.handles_[*handle] = {size, *properties};
    return f.record(Step::kCreate, 0, size, CUDA_SUCCESS);
  }

  static CUresult release(CUmemGenericAllocationHandle handle) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (CUresult error = f.injected(Step::kRelease)) return f.record(Step::kRelease, 0, 0, error);
    // Releasing a mapped handle is legal: the memory goes with the last unmap.
    if (f.handles_.erase(handle) == 0) {
      return f.reject(Step::kRelease, 0, 0, "unknown handle " + hex(handle));
    }
    return f.record(Step::kRelease, 0, 0, CUDA_SUCCESS);
  }

  static CUresult reserve(CUdeviceptr* address, size_t size, size_t alignment, CUdeviceptr fixed,
                          unsigned long long flags) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (CUresult error = f.injected(Step::kReserve)) {
      return f.record(Step::kReserve, 0, size, error);
    }
    if (address == nullptr || fixed != 0 || flags != 0 || size == 0 || size % f.granularity_ != 0) {
      return f.reject(Step::kReserve, 0, size, "bad argument");
    }
    if (alignment != 0) {
      f.next_address_ = (f.next_address_ + alignment - 1) / alignment * alignment;
    }
    *address = f.next_address_;
    f.next_address_ += size + f.granularity_;  // a gap: overruns do not reach the next range
    f.reservations_[*address] = {size, alignment};
    return f.record(Step::kReserve, *address, size, CUDA_SUCCESS);
  }

  static CUresult address_free(CUdeviceptr address, size_t size) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (CUresult error = f.injected(Step::kAddressFree)) {
      return f.record(Step::kAddressFree, address, size, error);
    }
    auto found = f.reservations_.find(address);
    if (found == f.reservations_.end() || found->second.size != size) {
      return f.reject(Step::kAddressFree, address, size, "no such reservation");
    }
    auto mapped = f.mappings_.lower_bound(address);
    if (mapped != f.mappings_.end() && mapped->first < address + size) {
      return f.reject(Step::kAddressFree, address, size, "range still mapped");
    }
    f.reservations_.erase(found);
    return f.record(Step::kAddressFree, address, size, CUDA_SUCCESS);
  }

  static CUresult map(CUdeviceptr address, size_t size, size_t offset,
                      CUmemGenericAllocationHandle handle, unsigned long long flags) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (CUresult error = f.injected(Step::kMap)) return f.record(Step::kMap, address, size, error);
    auto memory = f.handles_.find(handle);
    if (memory == f.handles_.end() || offset != 0 || flags != 0 ||
        memory->second.size < offset + size) {
      return f.reject(Step::kMap, address, size, "bad handle, offset or size");
    }
    auto reserved = f.reservations_.upper_bound(address);
    if (reserved == f.reservations_.begin() ||
        address + size > std::prev(reserved)->first + std::prev(reserved)->second.size) {
      return f.reject(Step::kMap, address, size, "range not reserved");
    }
    auto next = f.mappings_.lower_bound(address);
    bool overlaps = (next != f.mappings_.end() && next->first < address + size) ||
                    (next != f.mappings_.begin() &&
                     std::prev(next)->first + std::prev(next)->second.size > address);
    if (overlaps) return f.reject(Step::kMap, address, size, "range already mapped");
    f.mappings_[address] = {size, handle, {}};
    return f.record(Step::kMap, address, size, CUDA_SUCCESS);
  }

  static CUresult unmap(CUdeviceptr address, size_t size) {
    FakeDriverTable& f = fake();
    if (f.on_unmap) f.on_unmap(address);  // unlocked: it may call the driver
    std::lock_guard<std::mutex> lock(f.mutex_);
    if (CUresult error = f.injected(Step::kUnmap)) {
      return f.record(Step::kUnmap, address, size, error);
    }
    auto found = f.mappings_.find(address);
    if (found == f.mappings_.end() || found->second.size != size) {
      return f.reject(Step::kUnmap, address, size, "no such mapping");
    }
    f.mappings_.erase(found);
    return f.record(Step::kUnmap, address, size, CUDA_SUCCESS);
  }

  static CUresult set_access(CUdeviceptr address, size_t size, const CUmemAccessDesc* access,
                             size_t count) {
    FakeDriverTable& f = fake();
    std::lock_guard<std::mutex> lock(f.mutex_);
    std::vector<CUmemAccessDesc> descriptors(access, access + (access ? count : 0));
    f.access_calls_.push_back(descriptors);
    if (CUresult error = f.injected(Step::kSetAccess)) {
      return f.record(Step::kSetAccess, address, size, error);
    }
    auto found = f.mappings_.find(address);
    if (found == f.mappings_.end() || found->second.size != size) {
      return f.reject(Step::kSetAccess, address, size, "not one whole mapping");
    }
    if (descriptors.empty()) return f.reject(Step::kSetAccess, address, size, "no descriptors");
    for (const CUmemAccessDesc& descriptor : descriptors) {
      found->second.access.push_back(descriptor);
    }
    return f.record(Step::kSetAccess, address, size, CUDA_SUCCESS);
  }
};

FakeDriverTable::FakeDriverTable() {
  api_.mem_get_allocation_granularity = FakeCalls::granularity;
  api_.mem_create = FakeCalls::create;
  api_.mem_release = FakeCalls::release;
  api_.mem_address_reserve = FakeCalls::reserve;
  api_.mem_address_free = FakeCalls::address_free;
  api_.mem_map = FakeCalls::map;
  api_.mem_unmap = FakeCalls::unmap;
  api_.mem_set_access = FakeCalls::set_access;
  installed = this;
}

FakeDriverTable::~FakeDriverTable() {
  if (installed == this) installed = nullptr;
}

void FakeDriverTable::fail_call(Step step, int nth, CUresult error) {
  fail_nth_[{static_cast<int>(step), nth}] = error;
}

void FakeDriverTable::fail_always(Step step, CUresult error) {
  fail_always_[static_cast<int>(step)] = error;
}

void FakeDriverTable::heal() {
  fail_nth_.clear();
  for (CUresult& error : fail_always_) error = CUDA_SUCCESS;
}

CUresult FakeDriverTable::injected(Step step) {
  int index = static_cast<int>(step);
  auto nth = fail_nth_.find({index, ++counts_[index]});
  if (nth != fail_nth_.end()) return nth->second;
  return fail_always_[index];
}

CUresult FakeDriverTable::record(Step step, CUdeviceptr address, size_t size, CUresult result) {
  calls_.push_back({step, address, size, result});
  return result;
}

CUresult FakeDriverTable::reject(Step step, CUdeviceptr address, size_t size,
                                 const std::string& why) {
  misuse_.push_back(std::string(step_name(step)) + "(" + hex(address) + ", " + hex(size) +
                    "): " + why);
  return record(step, address, size, CUDA_ERROR_INVALID_VALUE);
}

const FakeDriverTable::MappedRange* FakeDriverTable::mapping_at(CUdeviceptr address) const {
  auto found = mappings_.find(address);
  return found == mappings_.end() ? nullptr : &found->second;
}

bool FakeDriverTable::grants(CUdeviceptr address, CUmemLocationType type, int id) const {
  const MappedRange* mapped = mapping_at(address);
  if (mapped == nullptr) return false;
  for (const CUmemAccessDesc& access : mapped->access) {
    if (access.location.type == type && access.location.id == id &&
        access.flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE) {
      return true;
    }
  }
  return false;
}

std::vector<Step> FakeDriverTable::steps() const {
  std::vector<Step> steps;
  for (const Call& call : calls_) steps.push_back(call.step);
  return steps;
}

int FakeDriverTable::count(Step step) const {
  int calls = 0;
  for (const Call& call : calls_) calls += call.step == step;
  return calls;
}

}  // namespace egm::fake_driver
