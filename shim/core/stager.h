// EGM_STAGING: host-placed allocations a kernel launch references are copied
// into an HBM window on the launch's own stream, right before the launch;
// the kernel gets the copies' addresses; after it, the shim's write-back
// kernel stores the words the kernel changed in a copy back to the original.
// Everything is enqueued on the launch's stream in program order, so the
// program's own ordering orders the copies too; nothing is kept across
// launches. A launch that cannot be staged safely passes through unchanged
// (zero-copy, as without staging). Design and hazards: docs/DESIGN.md.
#pragma once

#include <cuda.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "shim/core/allocation_table.h"
#include "shim/core/driver_api.h"
#include "shim/core/events.h"
#include "shim/core/launch_params.h"
#include "shim/core/staging_window.h"

namespace egm {

// What the stager needs from the Shim.
struct StagingHooks {
  // Lock-free: whether any host-placed allocation is live (none: nothing to
  // stage, not even a layout to ask for).
  std::function<bool()> any_live;
  // Lock-free "certainly not host-placed" prefilter.
  std::function<bool(uintptr_t)> may_contain;
  // The host-placed allocation holding an address.
  std::function<std::optional<Allocation>(uintptr_t)> allocation_at;
  std::function<void(const Event&)> emit;
  // Whether debug lines are written (a staged-launch line per staging).
  std::function<bool()> logs_debug;
};

// One launch as the program made it.
struct KernelLaunch {
  CUfunction function = nullptr;
  CUstream stream = nullptr;      // as given (NULL included)
  bool per_thread_stream = false;  // came through a _ptsz entry
  void** kernel_params = nullptr;
  void** extra = nullptr;
  const CUlaunchConfig* config = nullptr;  // cuLaunchKernelEx only
};

// Launches the kernel with `kernel_params` and `extra` in place of the
// program's (every other argument as the program gave it).
using LaunchWith = std::function<CUresult(void** kernel_params, void** extra)>;

// Why a launch referencing host-placed memory was not staged.
enum class StagingRefusal : int {
  kCapturing,        // the stream is capturing a graph (or cannot say)
  kCooperative,      // a cooperative launch (grid sync)
  kLaunchAttribute,  // an Ex attribute the stager does not know to be safe
  kEndPointer,       // a word is one past a staged allocation's end
  kTooLarge,         // twice its size exceeds half of the window
  kWindowFull,       // the launch's allocations together exceed the window
  kOtherContext,     // the current context is not the window's
  kOtherDevice,      // the allocation was made for another GPU
  kNoWindow,         // no window (or no write-back kernel) on this GPU
  kLayoutUnknown,    // the driver does not give the function's parameter layout
  kDriverError,      // a wait, copy or event call failed before the launch
  kManyStreams,      // read in place on more streams than the stager follows
  kInteriorPointer,  // a word points inside it, not at its start (may be no pointer)
  kCount
};
const char* refusal_name(StagingRefusal reason);

struct StagingCounts {
  uint64_t staged_launches = 0;
  uint64_t staged_bytes = 0;  // bytes copied in (each staged allocation, each launch)
  std::array<uint64_t, static_cast<size_t>(StagingRefusal::kCount)> refused{};
  uint64_t refused_launches() const;
};

class Stager {
 public:
  Stager(size_t window_bytes, StagingHooks hooks);
  ~Stager() = delete;  // lives as long as the Shim: launches may come during exit

  // At the shim's first intercepted allocation on `device`, with that
  // allocation's context current: the window (real cuMemAlloc) and the
  // write-back kernel. Lock-free after the first call per device.
  void prepare_device(int device, const DriverApi& driver);
  // The launch, staged where it can be, else passed through unchanged;
  // returns what the program's launch returns.
  CUresult launch(const KernelLaunch& launch, const LaunchWith& launch_with);
  // cudaDeviceReset destroyed the device's window with its context: a new
  // one is made at the device's next intercepted allocation.
  void device_reset(int device);
  // A host-placed allocation is freed: its unstage line if it was staged.
  void forget(const Allocation& allocation);
  // An IPC handle was made for chunk `chunk_id`: another process may
  // write its allocations, so they are never staged from now on.
  void chunk_exported(uint64_t chunk_id);

  StagingCounts counts() const;
  // The exit summary's staging line.
  Event summary_event() const;

 private:
  struct Window;
  struct Staged;
  struct StagingStats {
    uint64_t allocation_id = 0;
    uintptr_t address = 0;
    size_t requested = 0;
    int device = 0;
    uint64_t stagings = 0;
    uint64_t staged_bytes = 0;
  };

  // The first window `match` accepts whose context was not reset.
  template <typename Match>
  Window* live_window(Match match) const;
  Window* make_window(int device, const DriverApi& driver);
  void refuse(StagingRefusal reason, const std::vector<Allocation>& allocations);
  void refuse_function(StagingRefusal reason, CUfunction function);
  std::optional<StagingRefusal> launch_refusal(const KernelLaunch& launch, CUstream stream,
                                               const DriverApi& driver) const;
  CUresult stage(const KernelLaunch& launch, CUstream stream, Window& window,
                 const ParamLayout& layout, const ParamValues& values,
                 const std::vector<ParamWord>& words,
                 const std::vector<Allocation>& staged, const std::vector<Allocation>& in_place,
                 const LaunchWith& launch_with, const DriverApi& driver, bool* staged_it);
  template <typename CopyOf>
  void log_staged_launch(const KernelLaunch& launch, const std::vector<ParamWord>& rewritten,
                         CopyOf copy_of, const DriverApi& driver) const;
  bool write_back(Window& window, CUstream stream, const Staged& copy, const DriverApi& driver);
  void note_staged(const std::vector<Allocation>& staged);
  // The program's launch with the allocations read in place: after the
  // stagings of them that may still run, and noted for later stagings.
  CUresult launch_in_place(CUstream stream, Window* window,
                           const std::vector<Allocation>& allocations, const KernelLaunch& launch,
                           const LaunchWith& launch_with, const DriverApi& driver);
  // The same with order_mutex_ already held (by a staging).
  CUresult launch_in_place_ordered(CUstream stream, Window* window,
                                   const std::vector<Allocation>& allocations,
                                   const KernelLaunch& launch, const LaunchWith& launch_with,
                                   const DriverApi& driver);
  // Makes `stream` wait for the last staging of each allocation that has one
  // (its write-back included) and, with `in_place_too`, for the launches
  // that read it in place since on any stream. False if a wait failed or an
  // allocation is read in place on too many streams to follow.
  bool wait_for_uses(CUstream stream, const std::vector<Allocation>& allocations,
                     bool in_place_too, const DriverApi& driver);
  // After a launch on `stream` that read `allocations` in place (window's
  // context current).
  void note_in_place(CUstream stream, const Window& window,
                     const std::vector<Allocation>& allocations, const DriverApi& driver);

  size_t window_bytes_;
  StagingHooks hooks_;
  std::unique_ptr<LayoutCache> layouts_;

  static constexpr size_t kMaxWindows = 64;  // GPUs 0..63
  std::mutex windows_mutex_;                 // window creation only
  std::atomic<uint64_t> devices_tried_{0};
  std::array<std::atomic<Window*>, kMaxWindows> windows_{};
  std::vector<Window*> retired_windows_;  // reset ones whose slot was reused; a launch may hold one

  mutable std::mutex stats_mutex_;
  StagingCounts counts_;
  std::unordered_map<uintptr_t, StagingStats> staged_;  // by address, live allocations
  std::set<std::pair<uint64_t, int>> refusals_logged_;  // (allocation id, reason)
  std::unordered_set<void*> functions_logged_;          // layout-unknown handles
  std::unordered_set<uint64_t> exported_chunks_;

  // A stream as the in-place events follow it: CU_STREAM_PER_THREAD is a
  // different stream in each thread.
  using StreamKey = std::pair<CUstream, std::thread::id>;
  static StreamKey stream_key(CUstream stream);

  // The uses of each allocation that order the others: its last staging
  // (recorded after the write-back) and the launches
  // that read it in place since, one event per stream. A launch that reads
  // it in place waits for the last staging; a staging waits for both.
  // Without this, kernels the program lets run concurrently on two streams
  // (communicating through device-scope atomics on one allocation) would
  // work on different copies, and a write-back would lose the other's
  // updates. Launches that read in place never wait for each other.
  struct Uses {
    uint64_t allocation_id = 0;
    // Its own event (the ring's may serve an unrelated stream next),
    // recorded after each staging's write-back.
    CUevent staging = nullptr;
    std::vector<std::pair<StreamKey, CUevent>> in_place;
    bool untracked = false;  // read in place on more streams than followed: never staged again
  };
  static constexpr size_t kMaxInPlaceStreams = 16;
  // For an entry about to be dropped or replaced (a new allocation at its address).
  static void destroy_events(const Uses& uses);
  // An in-place launch's wait, launch and note (shared) and a staging's
  // whole sequence (exclusive) do not interleave: otherwise a staging on
  // another thread, made between an in-place launch and its note, would not
  // wait for it (and the in-place launch not for the staging).
  std::shared_mutex order_mutex_;
  std::mutex uses_mutex_;
  std::unordered_map<uintptr_t, Uses> uses_;
};

}  // namespace egm
