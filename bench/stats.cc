#include "bench/stats.h"

#include <algorithm>
#include <cmath>

namespace egm::bench {
namespace {

// The smallest value with at least `fraction` of the values at or below it.
double nearest_rank(const std::vector<double>& sorted, double fraction) {
  size_t rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

Summary summarize(std::vector<double> values) {
  Summary summary;
  if (values.empty()) return summary;
  std::sort(values.begin(), values.end());
  summary.count = values.size();
  summary.median = nearest_rank(values, 0.5);
  summary.p90 = nearest_rank(values, 0.9);
  summary.min = values.front();
  summary.max = values.back();
  return summary;
}

}  // namespace egm::bench
