// Per rank, per host and overall totals for egm-inspect, from the replay's
// events: what the logs of many ranks and hosts add up to. Memory grows with
// the number of processes, not with the log.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "tools/inspect/analysis.h"

namespace egm::inspect {

// A rank or host name from a log (untrusted: no terminal escapes in the
// report): bytes outside [A-Za-z0-9._-] become '_', cut to 64 bytes. The
// shim writes only such names (shim/core/log_identity.h).
std::string clean_log_name(const std::string& name);

class RankGroups {
 public:
  void note_process(const std::string& rank, const std::string& host, int64_t pid);
  void on_map(const Mapping& mapping);
  void on_unmap(const Mapping& mapping);
  void on_fallback(const std::string& rank, const std::string& host);
  void on_leak(const Mapping& mapping);
  // Current bytes at the report's time.
  void take_snapshot();
  // Fills report.ranks, hosts, total and has_ranks.
  void collect(Report& report) const;

 private:
  struct Tally {
    GroupSummary summary;
    uint64_t running_bytes = 0;
    std::set<std::string> ranks, hosts;
    std::set<int64_t> pids;
  };
  template <typename Change>
  void each(const std::string& rank, const std::string& host, Change change);
  static GroupSummary finished(const Tally& tally, const std::string& name);

  bool named_ = false;  // some start line said its rank or host
  std::map<std::string, Tally> ranks_;
  std::map<std::string, Tally> hosts_;
  Tally total_;
};

}  // namespace egm::inspect
