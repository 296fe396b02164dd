#include "shim/core/stager.h"

#include <fmt/format.h>

#include <algorithm>

#include "shim/core/staging_kernels.h"

namespace egm {
namespace {

constexpr const char* kRefusalNames[] = {
    "capturing",   "cooperative",   "launch-attribute", "end-pointer", "too-large",
    "window-full", "other-context", "other-device", "no-window",       "layout-unknown",
    "driver-error", "many-streams", "interior-pointer"};
static_assert(std::size(kRefusalNames) == static_cast<size_t>(StagingRefusal::kCount));

constexpr unsigned kWriteBackThreads = 256;
constexpr unsigned kWriteBackMaxBlocks = 4096;

size_t round_up_to(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// The bytes of an allocation a staging copies (whole 8-byte words: the
// mapping is at least that long).
size_t copied_bytes(const Allocation& allocation) { return round_up_to(allocation.requested, 8); }

// The window space one staging of it takes: its copy and its snapshot.
size_t region_bytes(const Allocation& allocation) {
  return 2 * round_up_to(copied_bytes(allocation), kStagingAlignment);
}

// Whether a word lies inside `allocation` but not at its start. The stager
// cannot tell a pointer from an integer of the same value: PyTorch passes
// pairs of 32-bit sizes such as {6, 4} = 0x400000006, which the driver's
// low addresses for host-placed memory can contain (a rewrite of it faulted
// with a misaligned address on the H200). Only a word equal to the start is
// rewritten; an allocation with any other word inside it is read in place.
bool points_inside(const std::vector<ParamWord>& words, const Allocation& allocation) {
  return std::any_of(words.begin(), words.end(), [&](const ParamWord& word) {
    return word.value > allocation.address && word.value < allocation.address + allocation.requested;
  });
}

// The driver's layout queries as launch_params.h takes them.
int function_param_info(void* handle, size_t index, size_t* offset, size_t* size) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || driver->func_get_param_info == nullptr) return CUDA_ERROR_NOT_SUPPORTED;
  return driver->func_get_param_info(static_cast<CUfunction>(handle), index, offset, size);
}

int kernel_param_info(void* handle, size_t index, size_t* offset, size_t* size) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || driver->kernel_get_param_info == nullptr) return CUDA_ERROR_NOT_SUPPORTED;
  return driver->kernel_get_param_info(static_cast<CUkernel>(handle), index, offset, size);
}

// The ring's events, in the window's context (current on every staged launch).
void* create_event(void*) {
  const DriverApi* driver = driver_api(nullptr);
  CUevent event = nullptr;
  if (driver == nullptr || driver->event_create == nullptr ||
      driver->event_create(&event, CU_EVENT_DISABLE_TIMING) != CUDA_SUCCESS) {
    return nullptr;
  }
  return event;
}

void destroy_event(void*, void* event) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver != nullptr && driver->event_destroy != nullptr) {
    driver->event_destroy(static_cast<CUevent>(event));
  }
}

// Attributes that change neither what the kernel may read or write nor when
// other work may see its results.
bool attribute_is_safe(const CUlaunchAttribute& attribute) {
  switch (static_cast<int>(attribute.id)) {
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    // The next kernel may start before ours ends only where it waits for our
    // results (griddepcontrol.wait); our copies and write-back are ordinary
    // stream work before and after the kernel.
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
      return true;
    default:
      // PROGRAMMATIC_EVENT and LAUNCH_COMPLETION_EVENT fire before our
      // write-back has run; others are unknown to this version.
      return false;
  }
}

bool is_managed_allocation(const Allocation& allocation) {
  return allocation.api == Api::kCudaMallocManaged || allocation.api == Api::kCuMemAllocManaged;
}

}  // namespace

struct Stager::Window {
  int device = 0;
  CUcontext context = nullptr;
  CUdeviceptr base = 0;
  size_t bytes = 0;
  CUmodule module = nullptr;
  CUfunction write_back = nullptr;
  std::atomic<bool> gone{false};  // its context was reset: never used again
  std::mutex mutex;  // the ring, held through a staged launch's whole sequence
  std::unique_ptr<StagingWindow> ring;

  // Twice its copy fits in half the window (launches may stage several).
  bool holds(const Allocation& allocation) const {
    return 2 * copied_bytes(allocation) <= bytes / 2;
  }
};

struct Stager::Staged {
  Allocation allocation;
  size_t size8 = 0;  // requested size rounded up to 8 bytes
  CUdeviceptr copy = 0;
  CUdeviceptr snapshot = 0;
};

const char* refusal_name(StagingRefusal reason) {
  return kRefusalNames[static_cast<size_t>(reason)];
}

uint64_t StagingCounts::refused_launches() const {
  uint64_t total = 0;
  for (uint64_t count : refused) total += count;
  return total;
}

Stager::Stager(size_t window_bytes, StagingHooks hooks)
    : window_bytes_(window_bytes),
      hooks_(std::move(hooks)),
      layouts_(std::make_unique<LayoutCache>(function_param_info, kernel_param_info)) {}

void Stager::prepare_device(int device, const DriverApi& driver) {
  if (device < 0 || device >= static_cast<int>(kMaxWindows)) return;
  uint64_t bit = uint64_t{1} << device;
  if (devices_tried_.load(std::memory_order_acquire) & bit) return;
  std::lock_guard<std::mutex> lock(windows_mutex_);
  if (devices_tried_.load(std::memory_order_relaxed) & bit) return;
  // The window belongs in the device's context: if the current one is
  // another device's, the device's next allocation tries again.
  CUdevice current = -1;
  if (driver.ctx_get_device == nullptr || driver.ctx_get_device(&current) != CUDA_SUCCESS ||
      static_cast<int>(current) != device) {
    return;
  }
  Window* window = make_window(device, driver);
  if (window != nullptr) {
    // A reset device's window is never used again: its slot takes the new
    // one (the old object stays, a launch may still hold it), so programs
    // that reset more often than there are slots keep staging.
    for (std::atomic<Window*>& slot : windows_) {
      Window* old = slot.load(std::memory_order_relaxed);
      if (old == nullptr || old->gone.load(std::memory_order_acquire)) {
        if (old != nullptr) retired_windows_.push_back(old);
        slot.store(window, std::memory_order_release);
        break;
      }
    }
  }
  devices_tried_.fetch_or(bit, std::memory_order_release);
}

Stager::Window* Stager::make_window(int device, const DriverApi& driver) {
  auto off = [&](const std::string& why) {
    hooks_.emit(events::notice(
        fmt::format("EGM_STAGING: no staging window on device {}: {}; staging is off there",
                    device, why)));
    return nullptr;
  };
  if (driver.mem_alloc == nullptr || driver.module_load_data == nullptr ||
      driver.module_get_function == nullptr || driver.launch_kernel == nullptr ||
      driver.memcpy_dtod_async == nullptr || driver.stream_wait_event == nullptr ||
      driver.event_create == nullptr || driver.event_record == nullptr ||
      driver.stream_is_capturing == nullptr || driver.ctx_get_current == nullptr) {
    return off("this driver lacks a function staging needs");
  }
  auto window = std::make_unique<Window>();
  window->device = device;
  if (driver.ctx_get_current(&window->context) != CUDA_SUCCESS || window->context == nullptr) {
    return off("no current context");
  }
  CUresult result = driver.mem_alloc(&window->base, window_bytes_);
  if (result != CUDA_SUCCESS) {
    return off(fmt::format("cuMemAlloc of {} bytes failed ({})", window_bytes_,
                           driver.error_name(result)));
  }
  result = driver.module_load_data(&window->module, kStagingKernelsPtx);
  if (result == CUDA_SUCCESS) {
    result = driver.module_get_function(&window->write_back, window->module, kWriteBackKernel);
  }
  if (result != CUDA_SUCCESS) {
    if (window->module != nullptr && driver.module_unload != nullptr) {
      driver.module_unload(window->module);
    }
    if (driver.mem_free != nullptr) driver.mem_free(window->base);
    return off(fmt::format("the write-back kernel cannot be loaded ({})",
                           driver.error_name(result)));
  }
  window->bytes = window_bytes_;
  window->ring = std::make_unique<StagingWindow>(
      window_bytes_, WindowEvents{create_event, destroy_event, nullptr});
  hooks_.emit(events::stage_window(device, window_bytes_, window->base));
  return window.release();  // lives as long as the process
}

template <typename Match>
Stager::Window* Stager::live_window(Match match) const {
  for (const std::atomic<Window*>& slot : windows_) {
    Window* window = slot.load(std::memory_order_acquire);
    if (window == nullptr) return nullptr;
    if (match(*window) && !window->gone.load(std::memory_order_acquire)) return window;
  }
  return nullptr;
}

void Stager::device_reset(int device) {
  if (device < 0 || device >= static_cast<int>(kMaxWindows)) return;
  std::lock_guard<std::mutex> lock(windows_mutex_);
  for (std::atomic<Window*>& slot : windows_) {
    Window* window = slot.load(std::memory_order_acquire);
    if (window == nullptr) break;
    if (window->device != device) continue;
    std::lock_guard<std::mutex> ring(window->mutex);  // no staged launch in flight on it
    window->gone.store(true, std::memory_order_release);
  }
  devices_tried_.fetch_and(~(uint64_t{1} << device), std::memory_order_release);
}

void Stager::refuse(StagingRefusal reason, const std::vector<Allocation>& allocations) {
  std::vector<Event> lines;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++counts_.refused[static_cast<size_t>(reason)];
    for (const Allocation& allocation : allocations) {
      if (refusals_logged_.insert({allocation.id, static_cast<int>(reason)}).second) {
        lines.push_back(events::staging_decision(allocation, refusal_name(reason)));
      }
    }
  }
  for (const Event& line : lines) hooks_.emit(line);
}

void Stager::refuse_function(StagingRefusal reason, CUfunction function) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++counts_.refused[static_cast<size_t>(reason)];
    first = functions_logged_.insert(function).second;
  }
  if (first) {
    hooks_.emit(events::staging_function_decision(reinterpret_cast<uintptr_t>(function),
                                                  refusal_name(reason)));
  }
}

std::optional<StagingRefusal> Stager::launch_refusal(const KernelLaunch& launch, CUstream stream,
                                                     const DriverApi& driver) const {
  if (launch.config != nullptr && launch.config->numAttrs > 0) {
    if (launch.config->attrs == nullptr) return StagingRefusal::kLaunchAttribute;
    for (unsigned i = 0; i < launch.config->numAttrs; ++i) {
      const CUlaunchAttribute& attribute = launch.config->attrs[i];
      if (attribute.id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE) {
        if (attribute.value.cooperative != 0) return StagingRefusal::kCooperative;
      } else if (!attribute_is_safe(attribute)) {
        return StagingRefusal::kLaunchAttribute;
      }
    }
  }
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  if (driver.stream_is_capturing == nullptr ||
      driver.stream_is_capturing(stream, &status) != CUDA_SUCCESS ||
      status != CU_STREAM_CAPTURE_STATUS_NONE) {
    return StagingRefusal::kCapturing;
  }
  return std::nullopt;
}

CUresult Stager::launch(const KernelLaunch& launch, const LaunchWith& launch_with) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || launch.function == nullptr || windows_[0].load() == nullptr ||
      !hooks_.any_live()) {
    return launch_with(launch.kernel_params, launch.extra);
  }
  std::shared_ptr<const ParamLayout> layout = layouts_->layout_of(launch.function);
  if (!layout->known) {
    refuse_function(StagingRefusal::kLayoutUnknown, launch.function);
    return launch_with(launch.kernel_params, launch.extra);
  }
  ParamValues values;
  if (!param_values_of(launch.kernel_params, launch.extra, &values)) {
    return launch_with(launch.kernel_params, launch.extra);  // nothing to read: the driver answers
  }
  // Words inside a host-placed allocation, or just past one (an end pointer).
  std::vector<ParamWord> words = candidate_words(*layout, values, [&](uint64_t value) {
    return hooks_.may_contain(value) || (value > 0 && hooks_.may_contain(value - 1));
  });
  if (words.empty()) return launch_with(launch.kernel_params, launch.extra);
  std::vector<Allocation> referenced;
  for (const ParamWord& word : words) {
    std::optional<Allocation> found = hooks_.allocation_at(word.value);
    if (!found) continue;
    bool seen = std::any_of(referenced.begin(), referenced.end(),
                            [&](const Allocation& a) { return a.id == found->id; });
    if (!seen) referenced.push_back(*found);
  }
  if (referenced.empty()) return launch_with(launch.kernel_params, launch.extra);

  CUstream stream = launch.per_thread_stream && launch.stream == nullptr ? CU_STREAM_PER_THREAD
                                                                          : launch.stream;
  CUcontext context = nullptr;
  Window* window = nullptr;
  if (driver->ctx_get_current(&context) == CUDA_SUCCESS) {
    window = live_window([&](const Window& candidate) { return candidate.context == context; });
  }
  std::optional<StagingRefusal> refusal = launch_refusal(launch, stream, *driver);
  if (refusal == StagingRefusal::kCapturing) {
    // A capturing stream can neither wait for work outside its graph nor
    // record for it: the graph's launches are not ordered with stagings.
    refuse(*refusal, referenced);
    return launch_with(launch.kernel_params, launch.extra);
  }
  if (!refusal && window == nullptr) {
    CUdevice device = -1;
    bool has_window = driver->ctx_get_device != nullptr &&
                      driver->ctx_get_device(&device) == CUDA_SUCCESS &&
                      live_window([&](const Window& other) {
                        return other.device == static_cast<int>(device);
                      }) != nullptr;
    refusal = has_window ? StagingRefusal::kOtherContext : StagingRefusal::kNoWindow;
  }
  if (refusal) {
    refuse(*refusal, referenced);
    return launch_in_place(stream, window, referenced, launch, launch_with, *driver);
  }

  // Which of them are staged; the others are read in place.
  std::vector<Allocation> staged, in_place;
  std::map<StagingRefusal, std::vector<Allocation>> refused;  // one count per launch and reason
  size_t total = 0;
  for (const Allocation& allocation : referenced) {
    size_t size8 = copied_bytes(allocation);
    bool exported = false;
    {
      std::lock_guard<std::mutex> lock(stats_mutex_);
      exported = exported_chunks_.count(allocation.chunk_id) > 0;
    }
    bool untracked = false;
    {
      std::lock_guard<std::mutex> lock(uses_mutex_);
      auto found = uses_.find(allocation.address);
      untracked = found != uses_.end() && found->second.allocation_id == allocation.id &&
                  found->second.untracked;
    }
    std::optional<StagingRefusal> reason;
    size_t needed = region_bytes(allocation);
    if (points_inside(words, allocation)) {
      reason = StagingRefusal::kInteriorPointer;
    } else if (allocation.device != window->device) {
      reason = StagingRefusal::kOtherDevice;
    } else if (!window->holds(allocation)) {
      reason = StagingRefusal::kTooLarge;
    } else if (untracked) {
      reason = StagingRefusal::kManyStreams;
    } else if (total + needed > window->bytes - window->bytes % kStagingAlignment) {
      reason = StagingRefusal::kWindowFull;
    }
    if (is_managed_allocation(allocation) || exported || size8 > allocation.mapped || reason) {
      if (reason && !is_managed_allocation(allocation) && !exported) {
        refused[*reason].push_back(allocation);
      }
      in_place.push_back(allocation);
      continue;
    }
    total += needed;
    staged.push_back(allocation);
  }
  for (const auto& [reason, allocations] : refused) refuse(reason, allocations);
  if (staged.empty()) {
    return launch_in_place(stream, window, in_place, launch, launch_with, *driver);
  }
  for (const ParamWord& word : words) {
    for (const Allocation& allocation : staged) {
      if (word.value == allocation.address + allocation.requested) {
        refuse(StagingRefusal::kEndPointer, staged);
        return launch_in_place(stream, window, referenced, launch, launch_with,
                               *driver);
      }
    }
  }
  bool staged_it = false;
  CUresult result = stage(launch, stream, *window, *layout, values, words, staged, in_place,
                          launch_with, *driver, &staged_it);
  if (staged_it) note_staged(staged);
  return result;
}

CUresult Stager::launch_in_place(CUstream stream, Window* window,
                                 const std::vector<Allocation>& allocations,
                                 const KernelLaunch& launch, const LaunchWith& launch_with,
                                 const DriverApi& driver) {
  std::shared_lock<std::shared_mutex> order(order_mutex_);
  return launch_in_place_ordered(stream, window, allocations, launch, launch_with, driver);
}

CUresult Stager::launch_in_place_ordered(CUstream stream, Window* window,
                                         const std::vector<Allocation>& allocations,
                                         const KernelLaunch& launch,
                                         const LaunchWith& launch_with,
                                         const DriverApi& driver) {
  wait_for_uses(stream, allocations, false, driver);
  CUresult result = launch_with(launch.kernel_params, launch.extra);
  if (result == CUDA_SUCCESS && window != nullptr) {
    note_in_place(stream, *window, allocations, driver);
  }
  return result;
}

// Debug only: which kernel got which window addresses (a wrong result or a
// fault under staging starts here).
template <typename CopyOf>
void Stager::log_staged_launch(const KernelLaunch& launch, const std::vector<ParamWord>& rewritten,
                               CopyOf copy_of, const DriverApi& driver) const {
  const char* name = nullptr;
  if (driver.func_get_name == nullptr || driver.func_get_name(&name, launch.function) != CUDA_SUCCESS ||
      name == nullptr) {
    name = "?";
  }
  std::string words;
  for (const ParamWord& word : rewritten) {
    words += fmt::format("{}p{}+{}:{:#x}->{:#x}", words.empty() ? "" : ",", word.param,
                         word.offset, word.value, copy_of(word.value));
  }
  hooks_.emit(events::staged_launch(reinterpret_cast<uintptr_t>(launch.function), name, words));
}

CUresult Stager::stage(const KernelLaunch& launch, CUstream stream, Window& window,
                       const ParamLayout& layout, const ParamValues& values,
                       const std::vector<ParamWord>& words,
                       const std::vector<Allocation>& staged,
                       const std::vector<Allocation>& in_place, const LaunchWith& launch_with,
                       const DriverApi& driver, bool* staged_it) {
  std::unique_lock<std::shared_mutex> order(order_mutex_);
  std::lock_guard<std::mutex> lock(window.mutex);
  std::vector<Allocation> referenced = staged;
  referenced.insert(referenced.end(), in_place.begin(), in_place.end());
  if (window.gone.load(std::memory_order_acquire)) {  // reset since it was looked up
    refuse(StagingRefusal::kNoWindow, staged);
    return launch_in_place_ordered(stream, nullptr, referenced, launch, launch_with,
                                   driver);
  }
  size_t total = 0;
  for (const Allocation& allocation : staged) {
    total += region_bytes(allocation);
  }
  std::optional<StagingWindow::Reservation> reservation = window.ring->reserve(total);
  if (!reservation) {
    refuse(StagingRefusal::kDriverError, staged);  // no event could be made
    return launch_in_place_ordered(stream, &window, referenced, launch, launch_with,
                                   driver);
  }
  // From here on the region is ours until its event is recorded; whatever
  // happens, it is recorded after the last of our work that uses it.
  auto finish = [&] {
    bool recorded = driver.event_record(static_cast<CUevent>(reservation->event), stream) ==
                    CUDA_SUCCESS;
    window.ring->commit(*reservation, recorded);
  };
  bool ready = !reservation->synchronize || driver.ctx_synchronize == nullptr ||
               driver.ctx_synchronize() == CUDA_SUCCESS;
  for (void* event : reservation->waits) {
    ready = ready && driver.stream_wait_event(stream, static_cast<CUevent>(event), 0) == CUDA_SUCCESS;
  }
  ready = ready && wait_for_uses(stream, staged, true, driver) &&
          wait_for_uses(stream, in_place, false, driver);
  std::vector<Staged> copies;
  CUdeviceptr next = window.base + reservation->offset;
  for (const Allocation& allocation : staged) {
    Staged copy{allocation, copied_bytes(allocation), next, 0};
    copy.snapshot = copy.copy + round_up_to(copy.size8, kStagingAlignment);
    next = copy.snapshot + round_up_to(copy.size8, kStagingAlignment);
    ready = ready &&
            driver.memcpy_dtod_async(copy.copy, allocation.address, copy.size8, stream) ==
                CUDA_SUCCESS &&
            driver.memcpy_dtod_async(copy.snapshot, copy.copy, copy.size8, stream) == CUDA_SUCCESS;
    copies.push_back(copy);
  }
  if (!ready) {
    finish();
    refuse(StagingRefusal::kDriverError, staged);
    return launch_in_place_ordered(stream, &window, referenced, launch, launch_with,
                                   driver);
  }
  auto copy_of = [&](uint64_t value) -> uint64_t {
    for (const Staged& copy : copies) {
      const Allocation& a = copy.allocation;
      if (value >= a.address && value < a.address + a.requested) {
        return copy.copy + (value - a.address);
      }
    }
    return value;
  };
  std::vector<ParamWord> rewritten;
  for (const ParamWord& word : words) {
    if (copy_of(word.value) != word.value) rewritten.push_back(word);
  }
  RewrittenParams params(layout, values, rewritten, copy_of);
  CUresult result = launch_with(params.params(), params.extra());
  if (hooks_.logs_debug && hooks_.logs_debug()) log_staged_launch(launch, rewritten, copy_of, driver);
  if (result != CUDA_SUCCESS) {
    finish();  // the kernel never ran: nothing to write back
    return result;
  }
  for (const Staged& copy : copies) write_back(window, stream, copy, driver);
  finish();
  note_in_place(stream, window, in_place, driver);
  bool recorded = true;
  {
    // Later launches order themselves after this staging. The in-place
    // events stay (another thread may have recorded one again since the
    // waits above); waiting for an old record costs the GPU nothing.
    std::lock_guard<std::mutex> lock(uses_mutex_);
    for (const Allocation& allocation : staged) {
      Uses& uses = uses_[allocation.address];
      if (uses.allocation_id != allocation.id) {
        destroy_events(uses);
        uses = Uses{allocation.id};
      }
      if (uses.staging == nullptr) uses.staging = static_cast<CUevent>(create_event(nullptr));
      recorded = uses.staging != nullptr &&
                 driver.event_record(uses.staging, stream) == CUDA_SUCCESS && recorded;
    }
  }
  // Nothing to order later launches by: the staging completes here instead.
  if (!recorded && driver.ctx_synchronize != nullptr) driver.ctx_synchronize();
  *staged_it = true;
  return result;
}

// An allocation's staging event is recorded again only by a later staging
// of it, which waited for the earlier: the wait is then for later work,
// never less.
bool Stager::wait_for_uses(CUstream stream, const std::vector<Allocation>& allocations,
                           bool in_place_too, const DriverApi& driver) {
  std::vector<CUevent> events;
  bool followed = true;
  {
    std::lock_guard<std::mutex> lock(uses_mutex_);
    if (uses_.empty()) return true;
    for (const Allocation& allocation : allocations) {
      auto found = uses_.find(allocation.address);
      if (found == uses_.end() || found->second.allocation_id != allocation.id) continue;
      const Uses& uses = found->second;
      if (uses.staging != nullptr) events.push_back(uses.staging);
      if (!in_place_too) continue;
      followed = followed && !uses.untracked;
      for (const auto& [used_on, event] : uses.in_place) events.push_back(event);
    }
  }
  bool waited = followed;
  for (CUevent event : events) {
    waited = driver.stream_wait_event(stream, event, 0) == CUDA_SUCCESS && waited;
  }
  return waited;
}

Stager::StreamKey Stager::stream_key(CUstream stream) {
  return {stream, stream == CU_STREAM_PER_THREAD ? std::this_thread::get_id() : std::thread::id()};
}

void Stager::note_in_place(CUstream stream, const Window& window,
                           const std::vector<Allocation>& allocations, const DriverApi& driver) {
  std::lock_guard<std::mutex> lock(uses_mutex_);
  for (const Allocation& allocation : allocations) {
    // Only allocations that may be staged some day need following: the
    // window's device's (in its context), small enough, neither managed
    // nor exported.
    if (allocation.device != window.device || !window.holds(allocation) ||
        is_managed_allocation(allocation)) {
      continue;
    }
    Uses& uses = uses_[allocation.address];
    if (uses.allocation_id != allocation.id) {
      destroy_events(uses);
      uses = Uses{allocation.id};
    }
    if (uses.untracked) continue;
    CUevent event = nullptr;
    StreamKey key = stream_key(stream);
    for (const auto& [used_on, known] : uses.in_place) {
      if (used_on == key) event = known;
    }
    if (event == nullptr) {
      event = static_cast<CUevent>(uses.in_place.size() < kMaxInPlaceStreams
                                       ? create_event(nullptr)
                                       : nullptr);
      if (event == nullptr) {
        uses.untracked = true;  // cannot be followed: never staged again
        continue;
      }
      uses.in_place.emplace_back(key, event);
    }
    if (driver.event_record(event, stream) != CUDA_SUCCESS) uses.untracked = true;
  }
}

bool Stager::write_back(Window& window, CUstream stream, const Staged& copy,
                        const DriverApi& driver) {
  unsigned long long copy_address = copy.copy, snapshot = copy.snapshot,
                     original = copy.allocation.address, words = copy.size8 / 8;
  void* args[] = {&copy_address, &snapshot, &original, &words};
  unsigned blocks = static_cast<unsigned>(
      std::min<unsigned long long>(kWriteBackMaxBlocks,
                                   (words + kWriteBackThreads - 1) / kWriteBackThreads));
  blocks = std::max(blocks, 1u);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (driver.launch_kernel(window.write_back, blocks, 1, 1, kWriteBackThreads, 1, 1, 0, stream,
                             args, nullptr) == CUDA_SUCCESS) {
      return true;
    }
  }
  // The kernel's writes must reach the original: the whole copy then (a
  // write the kernel made through an alias the shim did not see is lost).
  CUresult result =
      driver.memcpy_dtod_async(copy.allocation.address, copy.copy, copy.size8, stream);
  hooks_.emit(events::notice(fmt::format(
      "EGM_STAGING: the write-back kernel did not launch for {:#x}; copied back whole ({})",
      copy.allocation.address, driver.error_name(result))));
  return false;
}

void Stager::note_staged(const std::vector<Allocation>& staged) {
  std::vector<Event> lines;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    ++counts_.staged_launches;
    for (const Allocation& allocation : staged) {
      size_t size8 = copied_bytes(allocation);
      counts_.staged_bytes += size8;
      StagingStats& stats = staged_[allocation.address];
      if (stats.allocation_id != allocation.id) {  // first staging of this allocation
        stats = {allocation.id, allocation.address, allocation.requested, allocation.device, 0, 0};
        lines.push_back(events::stage(allocation));
      }
      ++stats.stagings;
      stats.staged_bytes += size8;
    }
  }
  for (const Event& line : lines) hooks_.emit(line);
}

void Stager::destroy_events(const Uses& uses) {
  for (const auto& [used_on, event] : uses.in_place) destroy_event(nullptr, event);
  if (uses.staging != nullptr) destroy_event(nullptr, uses.staging);
}

void Stager::forget(const Allocation& allocation) {
  {
    std::lock_guard<std::mutex> lock(uses_mutex_);
    auto found = uses_.find(allocation.address);
    if (found != uses_.end() && found->second.allocation_id == allocation.id) {
      // Pending waits on an event outlive its destruction.
      destroy_events(found->second);
      uses_.erase(found);
    }
  }
  std::optional<StagingStats> stats;
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    auto found = staged_.find(allocation.address);
    if (found != staged_.end() && found->second.allocation_id == allocation.id) {
      stats = found->second;
      staged_.erase(found);
    }
  }
  if (stats) hooks_.emit(events::unstage(allocation, stats->stagings, stats->staged_bytes));
}

void Stager::chunk_exported(uint64_t chunk_id) {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  exported_chunks_.insert(chunk_id);
}

StagingCounts Stager::counts() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return counts_;
}

Event Stager::summary_event() const {
  StagingCounts counts = this->counts();
  std::string refused;
  for (size_t i = 0; i < counts.refused.size(); ++i) {
    if (counts.refused[i] == 0) continue;
    refused += fmt::format(" refused_{}={}", kRefusalNames[i], counts.refused[i]);
  }
  std::replace(refused.begin(), refused.end(), '-', '_');
  return events::staging_summary(counts.staged_launches, counts.staged_bytes,
                                 counts.refused_launches(), refused);
}

}  // namespace egm
