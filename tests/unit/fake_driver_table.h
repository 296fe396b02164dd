// A fake CUDA driver for the VMM calls of the EGM sequence, as a DriverApi
// table, so that VmmSequence and HostPool can be tested without a GPU (the
// way tcmalloc tests its page heap against a fake virtual allocator).
//
// The fake keeps an in-memory model of what a real driver would hold:
// physical handles, reserved address ranges, mappings and the access granted
// to each mapping. It checks every call against that model (a call on a
// range or handle that does not exist fails and is noted as misuse), and can
// make any step fail on its nth call or on every call.
//
// DriverApi holds plain function pointers, so one FakeDriverTable at a time
// is live: constructing one installs it, destroying it uninstalls it. The
// driver calls may come from several threads; read the model (handles(),
// calls(), ...) once they are done.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "shim/core/driver_api.h"

namespace egm::fake_driver {

enum class Step {
  kGranularity,  // cuMemGetAllocationGranularity
  kCreate,       // cuMemCreate
  kReserve,      // cuMemAddressReserve
  kMap,          // cuMemMap
  kSetAccess,    // cuMemSetAccess
  kUnmap,        // cuMemUnmap
  kRelease,      // cuMemRelease
  kAddressFree,  // cuMemAddressFree
};
inline constexpr int kStepCount = 8;

// The CUDA name of a step, as EgmFailure::step spells it.
const char* step_name(Step step);

class FakeDriverTable {
 public:
  struct Handle {
    size_t size = 0;
    CUmemAllocationProp properties = {};
  };
  struct Reservation {
    size_t size = 0;
    size_t alignment = 0;
  };
  struct MappedRange {
    size_t size = 0;
    CUmemGenericAllocationHandle handle = 0;
    std::vector<CUmemAccessDesc> access;  // every grant, in order
  };
  struct Call {
    Step step;
    CUdeviceptr address = 0;  // 0 for create, release, granularity
    size_t size = 0;
    CUresult result = CUDA_SUCCESS;
  };

  FakeDriverTable();
  ~FakeDriverTable();
  FakeDriverTable(const FakeDriverTable&) = delete;
  FakeDriverTable& operator=(const FakeDriverTable&) = delete;

  // The table to hand to the code under test.
  const DriverApi& api() const { return api_; }

  // The granularity the driver reports (both minimum and recommended).
  void set_granularity(size_t bytes) { granularity_ = bytes; }

  // The nth call (1-based, counted from construction) of `step` fails.
  void fail_call(Step step, int nth, CUresult error = CUDA_ERROR_OUT_OF_MEMORY);
  // Every call of `step` from now on fails (until heal()).
  void fail_always(Step step, CUresult error = CUDA_ERROR_OUT_OF_MEMORY);
  void heal();

  // Runs inside cuMemUnmap, before the range is unmapped.
  std::function<void(CUdeviceptr)> on_unmap;

  // What the driver holds now.
  const std::map<CUmemGenericAllocationHandle, Handle>& handles() const { return handles_; }
  const std::map<CUdeviceptr, Reservation>& reservations() const { return reservations_; }
  const std::map<CUdeviceptr, MappedRange>& mappings() const { return mappings_; }
  // Nothing held: every handle released, range unmapped and freed.
  bool clean() const { return handles_.empty() && reservations_.empty() && mappings_.empty(); }
  // The mapping that starts at `address`, or nullptr.
  const MappedRange* mapping_at(CUdeviceptr address) const;
  // Whether the mapping at `address` grants read-write to (type, id).
  bool grants(CUdeviceptr address, CUmemLocationType type, int id) const;

  // Every call, in order, and the calls of one step.
  const std::vector<Call>& calls() const { return calls_; }
  std::vector<Step> steps() const;
  int count(Step step) const;
  // The arguments of the last granularity query.
  const CUmemAllocationProp& last_granularity_properties() const { return granularity_props_; }
  CUmemAllocationGranularity_flags last_granularity_option() const { return granularity_option_; }
  // The descriptors of each cuMemSetAccess call, in order.
  const std::vector<std::vector<CUmemAccessDesc>>& access_calls() const { return access_calls_; }
  // Calls that broke the driver's rules (unknown handle or range, offset,
  // size mismatch, ...): each is one line. A correct caller makes none.
  const std::vector<std::string>& misuse() const { return misuse_; }

 private:
  friend struct FakeCalls;
  // The injected result for this call of `step` (counted here), or success.
  CUresult injected(Step step);
  CUresult record(Step step, CUdeviceptr address, size_t size, CUresult result);
  // Notes a call that broke the rules and fails it with CUDA_ERROR_INVALID_VALUE.
  CUresult reject(Step step, CUdeviceptr address, size_t size, const std::string& why);

  DriverApi api_;
  std::mutex mutex_;  // held by each driver call (not by on_unmap)
  size_t granularity_ = size_t{2} << 20;
  CUdeviceptr next_address_ = 0x7f0000000000;
  CUmemGenericAllocationHandle next_handle_ = 0x100;
  std::map<CUmemGenericAllocationHandle, Handle> handles_;
  std::map<CUdeviceptr, Reservation> reservations_;
  std::map<CUdeviceptr, MappedRange> mappings_;
  std::vector<Call> calls_;
  std::vector<std::vector<CUmemAccessDesc>> access_calls_;
  std::vector<std::string> misuse_;
  CUmemAllocationProp granularity_props_ = {};
  CUmemAllocationGranularity_flags granularity_option_ = CU_MEM_ALLOC_GRANULARITY_MINIMUM;
  int counts_[kStepCount] = {};
  std::map<std::pair<int, int>, CUresult> fail_nth_;  // (step, nth) -> error
  CUresult fail_always_[kStepCount] = {};
};

}  // namespace egm::fake_driver
