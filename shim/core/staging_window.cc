#include "shim/core/staging_window.h"

namespace egm {
namespace {

size_t round_up(size_t value, size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

bool overlaps(size_t a, size_t a_size, size_t b, size_t b_size) {
  return a < b + b_size && b < a + a_size;
}

}  // namespace

StagingWindow::~StagingWindow() {
  if (events_.destroy == nullptr) return;
  for (const Region& region : regions_) {
    if (region.event != nullptr) events_.destroy(events_.context, region.event);
  }
  for (void* event : free_events_) events_.destroy(events_.context, event);
}

void* StagingWindow::take_event() {
  if (!free_events_.empty()) {
    void* event = free_events_.back();
    free_events_.pop_back();
    return event;
  }
  void* event = events_.create != nullptr ? events_.create(events_.context) : nullptr;
  if (event != nullptr) ++events_made_;
  return event;
}

std::optional<StagingWindow::Reservation> StagingWindow::reserve(size_t size) {
  if (size == 0 || size > capacity_ - capacity_ % kStagingAlignment) return std::nullopt;
  size = round_up(size, kStagingAlignment);
  void* event = take_event();
  if (event == nullptr) return std::nullopt;
  Reservation reservation;
  reservation.offset = next_ + size <= capacity_ ? next_ : 0;
  reservation.size = size;
  reservation.event = event;
  // Every region the new space overlaps is retired: its stream's waits are
  // enqueued by the caller before any use, so its event may serve again.
  for (auto region = regions_.begin(); region != regions_.end();) {
    if (!overlaps(region->offset, region->size, reservation.offset, size)) {
      ++region;
      continue;
    }
    if (region->recorded) {
      reservation.waits.push_back(region->event);
    } else {
      reservation.synchronize = true;
    }
    free_events_.push_back(region->event);
    region = regions_.erase(region);
  }
  next_ = reservation.offset + size;
  regions_.push_back({reservation.offset, size, event, false});
  return reservation;
}

void StagingWindow::commit(const Reservation& reservation, bool recorded) {
  for (Region& region : regions_) {
    if (region.event == reservation.event && region.offset == reservation.offset) {
      region.recorded = recorded;
      return;
    }
  }
}

}  // namespace egm
