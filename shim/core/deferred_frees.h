// Frees that wait for a stream (cudaFreeAsync; cuMemFreeAsync goes the same
// way): the allocation leaves the mapping table at once, but its memory is
// unmapped only when an event recorded on the stream says that the stream's
// earlier work is done.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include "shim/core/allocation_table.h"

namespace egm {

// One layer's events (the runtime's cudaEvent_t or the driver's CUevent).
struct EventOps {
  enum class State {
    kDone,     // the work before the event is finished
    kPending,  // not yet ("not ready")
    kGone,     // the handle is no longer an event of ours: its context was destroyed
  };
  State (*query)(void* event) = nullptr;
  void (*destroy)(void* event) = nullptr;
};

class DeferredFrees {
 public:
  struct Entry {
    Allocation mapping;
    // nullptr: no event can say when the memory is unused (a free made
    // during stream capture: a graph may use it at any later launch). The
    // entry then waits for its device's reset, or the end of the process.
    void* event = nullptr;
    const EventOps* ops = nullptr;
    int event_device = -1;  // the device whose context holds the event
  };

  void add(Entry entry);

  // The entries whose stream work is done, taken out of the list. Their
  // events are destroyed; events that are gone are not touched, since their
  // handles may belong to new events of the program by now.
  std::vector<Allocation> take_finished();

  // A device reset destroyed the device's context: its events and stream
  // work (and graphs) with it. Its entries are finished; their events are
  // dropped without a call.
  std::vector<Allocation> take_device(int device);

  size_t count() const { return count_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::atomic<size_t> count_{0};
};

}  // namespace egm
