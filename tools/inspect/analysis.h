// Replays the map/unmap events of egm-shim logs into the numbers a person
// asks after a run: what is still mapped, what leaked, how much each NUMA
// node and device held, how sizes and map times were spread, what fell back.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/inspect/log_reader.h"

namespace egm::inspect {

// A `--at` value before it is tied to a log: an absolute time, or seconds
// after the log's first event.
struct TimeSpec {
  bool relative = false;
  int64_t us = 0;  // since the epoch, or since the first event when relative
};

// "2024-05-01T10:00:05.250000Z" or "12.5s"; nullopt for anything else.
std::optional<TimeSpec> parse_time_spec(std::string_view text);
int64_t resolve(const TimeSpec& spec, int64_t first_event_us);

struct AnalysisOptions {
  std::optional<int64_t> snapshot_us;  // the state at this time; unset: end of log
  size_t top_n = 10;
};

// One EGM mapping, as its map line (or, if that line is missing, its leak
// line) described it.
struct Mapping {
  int64_t pid = 0;
  // The pid, with the host in the upper bits when the log names it (pids repeat across hosts).
  int64_t process = 0;
  std::string rank;  // from the process's start line; "" when the log does not say
  std::string host;
  uint64_t id = 0;
  std::string api;
  uint64_t addr = 0;
  uint64_t requested = 0;
  uint64_t mapped = 0;
  int64_t node = 0;
  int64_t device = 0;
  uint64_t chunk = 0;             // the backing chunk (0 when the log predates chunks)
  std::string source;             // fresh, pool or slab
  std::optional<int64_t> map_us;  // absent when known only from a leak line
  int64_t mapped_at_us = 0;
  SourceLocation where;
};

// A mapping that was never unmapped in the log.
struct Leak {
  Mapping mapping;
  bool reported_by_shim = false;  // an event=leak line at exit named it
  bool map_seen = true;           // false: known only from the leak line
};

// Bytes are `mapped` (what the node really gave, granularity included).
struct ByteUsage {
  uint64_t current_bytes = 0;  // at the snapshot
  uint64_t peak_bytes = 0;     // over the whole log
  uint64_t maps = 0;           // over the whole log
};

// Requested sizes in [lower_bytes, 2 * lower_bytes); lower_bytes 0 holds 0.
struct SizeBucket {
  uint64_t lower_bytes = 0;
  uint64_t count = 0;
  uint64_t bytes = 0;
};

struct FallbackCount {
  std::string step;
  std::string error;
  uint64_t count = 0;
  uint64_t requested_bytes = 0;
};

struct ProcessSummary {
  int64_t pid = 0;
  std::string rank;  // from its start line ("" when the log does not say)
  std::string host;
  std::vector<std::string> files;  // where its lines were, in command-line order
  int64_t first_us = 0;
  int64_t last_us = 0;
  uint64_t maps = 0;
  uint64_t unmaps = 0;
  uint64_t fallbacks = 0;
  uint64_t leaks = 0;
  bool exit_summary_seen = false;  // false: killed, or still running
};

// One point of a step line: from time_us on, the node held `bytes`.
struct UsageSample {
  int64_t time_us = 0;
  uint64_t bytes = 0;
};

// EGM_MODE=spill: one process's requests for one device (from the decision
// and map lines that carry device_free/device_total), and the bytes on the
// device and in host memory over time.
struct SpillSample {
  int64_t time_us = 0;
  // The whole device's memory in use (device_total - device_free, as
  // cuMemGetInfo saw it at a decision: every process and the CUDA context
  // included), plus the request when it stayed on the device.
  uint64_t device_bytes = 0;
  uint64_t host_bytes = 0;  // this process's host-placed bytes for the device (mapped)
};

struct SpillUsage {
  int64_t pid = 0;
  int64_t device = 0;
  uint64_t device_total = 0;           // the latest seen
  uint64_t kept_on_device = 0;         // requests the rule left on the device
  uint64_t kept_in_reserve = 0;        // of those, small ones inside the reserve (below-spill-size)
  uint64_t spilled_for_size = 0;       // trigger=spill-threshold
  uint64_t spilled_out_of_memory = 0;  // trigger=spill-oom
  SpillSample current;                 // at the snapshot
  uint64_t peak_device_bytes = 0;
  uint64_t peak_host_bytes = 0;
  std::vector<SpillSample> timeline;
};

// One rank's, one host's or all processes' share (EGM_LOG_FILE with %r/%h:
// the start line names both). Bytes are `mapped`.
struct GroupSummary {
  std::string name;                // the rank or host; "-" when no log said
  std::vector<std::string> ranks;  // the ranks seen in the group, in report order
  std::vector<std::string> hosts;
  std::vector<int64_t> pids;   // ascending
  size_t processes = 0;        // more than pids.size() when a pid repeats on several hosts
  uint64_t placed_bytes = 0;   // every map over the whole log
  uint64_t current_bytes = 0;  // at the snapshot
  uint64_t peak_bytes = 0;     // the group's most at once
  uint64_t maps = 0;
  uint64_t unmaps = 0;
  uint64_t fallbacks = 0;
  uint64_t leaks = 0;
};

struct Report {
  std::vector<std::string> files;
  size_t events = 0;  // lines read
  size_t lines_skipped = 0;
  int64_t first_us = 0;
  int64_t last_us = 0;
  int64_t snapshot_us = 0;
  bool snapshot_is_end = true;
  std::vector<ProcessSummary> processes;  // by pid (by host, then pid, when logs name hosts)
  // Filled when any start line names a rank or host: ranks in numeric order
  // (then norank and "-"), hosts by name, and all processes together.
  bool has_ranks = false;
  std::vector<GroupSummary> ranks;
  std::vector<GroupSummary> hosts;
  GroupSummary total;
  std::map<int64_t, ByteUsage> nodes;
  std::map<int64_t, ByteUsage> devices;
  // Pinned host memory per node from chunk-map/chunk-unmap lines (the pool's
  // chunks, in use or cached); empty for logs without chunk events.
  std::map<int64_t, ByteUsage> pinned_by_node;
  std::vector<Mapping> live;               // at the snapshot, by time mapped
  std::vector<Leak> leaks;                 // by time mapped
  std::vector<SizeBucket> size_histogram;  // contiguous, smallest first
  std::vector<Mapping> slowest;            // by map_us, slowest first
  std::vector<FallbackCount> fallbacks;    // most frequent first
  std::map<int64_t, std::vector<UsageSample>> node_timeline;
  std::map<std::pair<int64_t, int64_t>, SpillUsage> spill;  // by (pid, device); spill runs only
  std::vector<Warning> warnings;                            // the reader's, then the replay's
};

// `logs.lines` must be merged by timestamp (read_log_files does that).
Report analyze(const LogSet& logs, const AnalysisOptions& options);

// The same, reading the files as a stream (MergedLogReader): memory holds the
// live mappings and the report, not the logs. `at` (if given) sets
// options.snapshot_us, relative to the first line. Throws std::runtime_error
// for a file that cannot be read.
Report analyze_files(const std::vector<std::string>& paths, AnalysisOptions options,
                     const std::optional<TimeSpec>& at);

}  // namespace egm::inspect
