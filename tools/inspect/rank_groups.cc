#include "tools/inspect/rank_groups.h"

#include <algorithm>
#include <tuple>
#include <vector>

namespace egm::inspect {
namespace {

constexpr const char* kUnknown = "-";

std::string name_or_unknown(const std::string& name) { return name.empty() ? kUnknown : name; }

// Ranks read best in numeric order; norank and "-" (no start line said) last.
bool rank_order(const std::string& a, const std::string& b) {
  auto key = [](const std::string& rank) {
    bool number = !rank.empty() && rank.size() <= 18 &&
                  rank.find_first_not_of("0123456789") == std::string::npos;
    return std::make_tuple(number ? 0 : 1, number ? std::stoll(rank) : 0, rank);
  };
  return key(a) < key(b);
}

}  // namespace

std::string clean_log_name(const std::string& name) {
  constexpr size_t kMaxChars = 64;
  std::string clean = name.substr(0, kMaxChars);
  for (char& c : clean) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.';
    if (!safe) c = '_';
  }
  return clean;
}

template <typename Change>
void RankGroups::each(const std::string& rank, const std::string& host, Change change) {
  change(ranks_[name_or_unknown(rank)]);
  change(hosts_[name_or_unknown(host)]);
  change(total_);
}

void RankGroups::note_process(const std::string& rank, const std::string& host, int64_t pid) {
  if (!rank.empty() || !host.empty()) named_ = true;
  each(rank, host, [&](Tally& tally) {
    tally.ranks.insert(name_or_unknown(rank));
    tally.hosts.insert(name_or_unknown(host));
    tally.pids.insert(pid);
    ++tally.summary.processes;
  });
}

void RankGroups::on_map(const Mapping& mapping) {
  each(mapping.rank, mapping.host, [&](Tally& tally) {
    tally.running_bytes += mapping.mapped;
    tally.summary.placed_bytes += mapping.mapped;
    tally.summary.peak_bytes = std::max(tally.summary.peak_bytes, tally.running_bytes);
    ++tally.summary.maps;
  });
}

void RankGroups::on_unmap(const Mapping& mapping) {
  each(mapping.rank, mapping.host, [&](Tally& tally) {
    tally.running_bytes -= std::min(tally.running_bytes, mapping.mapped);
    ++tally.summary.unmaps;
  });
}

void RankGroups::on_fallback(const std::string& rank, const std::string& host) {
  each(rank, host, [](Tally& tally) { ++tally.summary.fallbacks; });
}

void RankGroups::on_leak(const Mapping& mapping) {
  each(mapping.rank, mapping.host, [](Tally& tally) { ++tally.summary.leaks; });
}

void RankGroups::take_snapshot() {
  for (auto* groups : {&ranks_, &hosts_}) {
    for (auto& [name, tally] : *groups) tally.summary.current_bytes = tally.running_bytes;
  }
  total_.summary.current_bytes = total_.running_bytes;
}

GroupSummary RankGroups::finished(const Tally& tally, const std::string& name) {
  GroupSummary summary = tally.summary;
  summary.name = name;
  summary.ranks.assign(tally.ranks.begin(), tally.ranks.end());
  std::sort(summary.ranks.begin(), summary.ranks.end(), rank_order);
  summary.hosts.assign(tally.hosts.begin(), tally.hosts.end());
  summary.pids.assign(tally.pids.begin(), tally.pids.end());
  return summary;
}

void RankGroups::collect(Report& report) const {
  report.has_ranks = named_;
  if (!named_) return;
  for (const auto& [name, tally] : ranks_) report.ranks.push_back(finished(tally, name));
  std::sort(
      report.ranks.begin(), report.ranks.end(),
      [](const GroupSummary& a, const GroupSummary& b) { return rank_order(a.name, b.name); });
  for (const auto& [name, tally] : hosts_) report.hosts.push_back(finished(tally, name));
  report.total = finished(total_, "all");
}

}  // namespace egm::inspect
