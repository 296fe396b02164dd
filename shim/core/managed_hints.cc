#include "shim/core/managed_hints.h"

#include <unistd.h>

#include <algorithm>

namespace egm {
namespace {

bool same(MemoryLocation a, MemoryLocation b) { return a.type == b.type && a.id == b.id; }

size_t round_down(size_t value, size_t page) { return value / page * page; }

// Rounded up, saturating: a range that ends near SIZE_MAX still ends.
size_t round_up(size_t value, size_t page) {
  size_t down = round_down(value, page);
  if (down == value) return value;
  return down > SIZE_MAX - page ? SIZE_MAX : down + page;
}

size_t end_of(size_t offset, size_t length) {
  return length > SIZE_MAX - offset ? SIZE_MAX : offset + length;
}

}  // namespace

bool operator==(const PageHints& a, const PageHints& b) {
  return a.read_mostly == b.read_mostly && same(a.preferred, b.preferred) &&
         same(a.last_prefetch, b.last_prefetch) &&
         a.accessed_by_devices == b.accessed_by_devices &&
         a.accessed_by_host == b.accessed_by_host;
}

PageHints common(const PageHints& a, const PageHints& b) {
  PageHints both;
  both.read_mostly = a.read_mostly && b.read_mostly;
  if (same(a.preferred, b.preferred)) both.preferred = a.preferred;
  if (same(a.last_prefetch, b.last_prefetch)) both.last_prefetch = a.last_prefetch;
  both.accessed_by_devices = a.accessed_by_devices & b.accessed_by_devices;
  both.accessed_by_host = a.accessed_by_host && b.accessed_by_host;
  return both;
}

size_t hint_page_size() {
  static const size_t page = [] {
    long size = sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<size_t>(size) : size_t{4096};
  }();
  return page;
}

size_t ManagedHints::index_of(size_t offset) const {
  auto after = std::upper_bound(intervals_.begin(), intervals_.end(), offset,
                                [](size_t value, const Interval& i) { return value < i.begin; });
  return static_cast<size_t>(after - intervals_.begin()) - 1;  // the first begins at 0
}

std::pair<size_t, size_t> ManagedHints::split(size_t offset, size_t length) {
  size_t page = hint_page_size();
  size_t begin = round_down(offset, page);
  size_t end = round_up(end_of(offset, length), page);
  if (begin >= end) return {0, 0};
  if (intervals_.empty()) intervals_.push_back({0, PageHints{}});
  for (size_t boundary : {begin, end}) {
    if (boundary == SIZE_MAX) continue;  // the last interval runs on
    size_t holder = index_of(boundary);
    if (intervals_[holder].begin != boundary) {
      intervals_.insert(intervals_.begin() + holder + 1, {boundary, intervals_[holder].hints});
    }
  }
  size_t first = index_of(begin);
  size_t last = end == SIZE_MAX ? intervals_.size() : index_of(end);
  return {first, last};
}

void ManagedHints::tidy() {
  auto coalesce = [this] {
    size_t kept = 0;
    for (size_t i = 1; i < intervals_.size(); ++i) {
      if (intervals_[i].hints == intervals_[kept].hints) continue;
      intervals_[++kept] = intervals_[i];
    }
    if (!intervals_.empty()) intervals_.resize(kept + 1);
  };
  coalesce();
  while (intervals_.size() > kMaxIntervals) {
    // The neighbouring pair that covers the fewest bytes (the last runs on).
    size_t best = 0, best_bytes = SIZE_MAX;
    for (size_t i = 0; i + 2 < intervals_.size(); ++i) {
      size_t bytes = intervals_[i + 2].begin - intervals_[i].begin;
      if (bytes < best_bytes) best = i, best_bytes = bytes;
    }
    intervals_[best].hints = common(intervals_[best].hints, intervals_[best + 1].hints);
    intervals_.erase(intervals_.begin() + best + 1);
    coalesce();
  }
  if (intervals_.size() == 1 && intervals_[0].hints == PageHints{}) intervals_.clear();
}

PageHints ManagedHints::common_to(size_t offset, size_t length) const {
  if (intervals_.empty()) return PageHints{};
  size_t page = hint_page_size();
  size_t begin = round_down(offset, page);
  size_t end = round_up(end_of(offset, length), page);
  size_t i = index_of(begin);
  PageHints all = intervals_[i].hints;
  for (++i; i < intervals_.size() && intervals_[i].begin < end; ++i) {
    all = common(all, intervals_[i].hints);
  }
  return all;
}

}  // namespace egm
