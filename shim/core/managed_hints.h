// A managed allocation's hints (cudaMemAdvise, cudaMemPrefetchAsync) per
// byte range, as CUDA keeps them per page: a small ordered list of
// intervals, equal neighbours coalesced, at most kMaxIntervals of them.
// Range queries answer what every page of the range has in common.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace egm {

// A cudaMemLocationType / CUmemLocationType value (the same) and its id.
struct MemoryLocation {
  int type = 0;  // 0: invalid (none set)
  int id = 0;
};

// What the program set on a run of pages.
struct PageHints {
  bool read_mostly = false;
  MemoryLocation preferred;
  MemoryLocation last_prefetch;
  uint64_t accessed_by_devices = 0;  // bit d: SetAccessedBy device d
  bool accessed_by_host = false;
};
bool operator==(const PageHints& a, const PageHints& b);
inline bool operator!=(const PageHints& a, const PageHints& b) { return !(a == b); }

// What every page of two runs has: read-mostly and accessed-by where both
// have them, a location where both have the same one, else none (invalid).
PageHints common(const PageHints& a, const PageHints& b);

// The CPU page size: CUDA rounds advice and prefetch ranges out to it.
size_t hint_page_size();

class ManagedHints {
 public:
  // Past this, the two neighbouring intervals that cover the fewest bytes
  // merge into their common hints: queries inside them then get the
  // invalid answer (never a wrong location); queries over both stay exact.
  static constexpr size_t kMaxIntervals = 64;

  // Applies `change(PageHints&)` to every page that [offset, +length)
  // touches (offsets from the allocation's start).
  template <typename Change>
  void change(size_t offset, size_t length, Change change) {
    std::pair<size_t, size_t> touched = split(offset, length);
    for (size_t i = touched.first; i < touched.second; ++i) change(intervals_[i].hints);
    tidy();
  }

  // What every page that [offset, +length) touches has.
  PageHints common_to(size_t offset, size_t length) const;

  size_t interval_count() const { return intervals_.empty() ? 1 : intervals_.size(); }

 private:
  struct Interval {
    size_t begin;  // page-aligned offset; runs to the next interval's begin
    PageHints hints;
  };
  // Makes interval boundaries at the pages of [offset, +length); returns
  // the index range of the intervals inside.
  std::pair<size_t, size_t> split(size_t offset, size_t length);
  void tidy();  // coalesces equal neighbours, keeps the cap
  size_t index_of(size_t offset) const;  // the interval holding offset

  std::vector<Interval> intervals_;  // by begin, the first at 0; empty: all default
};

}  // namespace egm
