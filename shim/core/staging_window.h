// The ring of a staging window (shim/core/stager.h): device memory handed
// out in regions, one per staged launch, in order around the window. A
// region's event is recorded on the launch's stream after the launch's last
// use of it; a later region that overlaps it must first make its own stream
// wait for that event (a GPU-side wait, no host stall). Pure logic: the
// events are injected. Not thread-safe: the stager holds a lock around it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace egm {

// The driver's events as the ring needs them. An event may be recorded
// again once the waits on its earlier record are enqueued (CUDA waits on
// the record current at cuStreamWaitEvent).
struct WindowEvents {
  void* (*create)(void* context) = nullptr;  // nullptr on failure
  void (*destroy)(void* context, void* event) = nullptr;
  void* context = nullptr;
};

inline constexpr size_t kStagingAlignment = 256;

class StagingWindow {
 public:
  StagingWindow(size_t capacity, WindowEvents events) : capacity_(capacity), events_(events) {}
  ~StagingWindow();
  StagingWindow(const StagingWindow&) = delete;
  StagingWindow& operator=(const StagingWindow&) = delete;

  struct Reservation {
    size_t offset = 0;  // from the window's start, 256-byte aligned
    size_t size = 0;
    void* event = nullptr;  // to record on the launch's stream after its last use
    // Events of the earlier regions this one overlaps: the launch's stream
    // waits for each before using the space. `synchronize`: one of them was
    // never recorded (its launch failed before the record): wait for the
    // whole context instead.
    std::vector<void*> waits;
    bool synchronize = false;
  };

  // Space for `size` bytes (rounded up to 256), after the newest region, or
  // at the start when it does not fit before the end. nullopt when it is
  // larger than the window or no event can be made; nothing changes then.
  std::optional<Reservation> reserve(size_t size);
  // The reservation's event was recorded (true) or could not be (false: a
  // later overlap synchronizes instead).
  void commit(const Reservation& reservation, bool recorded);

  size_t capacity() const { return capacity_; }
  size_t live_regions() const { return regions_.size(); }
  size_t events_made() const { return events_made_; }

 private:
  struct Region {
    size_t offset;
    size_t size;
    void* event;
    bool recorded;
  };
  void* take_event();

  size_t capacity_;
  WindowEvents events_;
  size_t next_ = 0;             // where the next region starts unless it wraps
  std::deque<Region> regions_;  // regions in use, oldest first
  std::vector<void*> free_events_;
  size_t events_made_ = 0;
};

}  // namespace egm
