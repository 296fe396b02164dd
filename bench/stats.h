// Summaries of repeated measurements, and the clock they are taken with.
#pragma once

#include <chrono>
#include <vector>

namespace egm::bench {

struct Summary {
  size_t count = 0;
  double median = 0;
  double p90 = 0;
  double min = 0;
  double max = 0;
};

// Nearest-rank percentiles; an empty input gives a zero Summary.
Summary summarize(std::vector<double> values);

// Seconds on the monotonic clock, for intervals.
inline double now_seconds() {
  using Seconds = std::chrono::duration<double>;
  return std::chrono::duration_cast<Seconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace egm::bench
