#include "shim/core/deferred_frees.h"

#include <utility>

namespace egm {

void DeferredFrees::add(Entry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.push_back(std::move(entry));
  count_.store(entries_.size(), std::memory_order_release);
}

std::vector<Allocation> DeferredFrees::take_finished() {
  if (count() == 0) return {};
  // The events are queried without the lock: a CUDA call may take long, and
  // other threads' frees must not wait for it. What is still pending goes back.
  std::vector<Entry> taken;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    taken.swap(entries_);
    count_.store(0, std::memory_order_release);
  }
  std::vector<Allocation> finished;
  std::vector<Entry> pending;
  for (Entry& entry : taken) {
    EventOps::State state =
        entry.event == nullptr ? EventOps::State::kPending : entry.ops->query(entry.event);
    if (state == EventOps::State::kPending) {
      pending.push_back(std::move(entry));
      continue;
    }
    if (state == EventOps::State::kDone) entry.ops->destroy(entry.event);
    finished.push_back(entry.mapping);
  }
  if (!pending.empty()) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.insert(entries_.end(), pending.begin(), pending.end());
    count_.store(entries_.size(), std::memory_order_release);
  }
  return finished;
}

std::vector<Allocation> DeferredFrees::take_device(int device) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Allocation> taken;
  std::vector<Entry> kept;
  for (Entry& entry : entries_) {
    if (entry.event_device == device) {
      taken.push_back(entry.mapping);
    } else {
      kept.push_back(std::move(entry));
    }
  }
  entries_.swap(kept);
  count_.store(entries_.size(), std::memory_order_release);
  return taken;
}

}  // namespace egm
