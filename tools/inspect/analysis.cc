#include "tools/inspect/analysis.h"

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "tools/inspect/rank_groups.h"

namespace egm::inspect {
namespace {

// Ids restart in every process, so a mapping is known by (process, id);
// `process` is the pid, with the host in the upper bits when the log names it.
using MappingKey = std::pair<int64_t, uint64_t>;

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr size_t kMaxFractionDigits = 6;  // the log's own precision

constexpr uint64_t floor_power_of_two(uint64_t value) {
  uint64_t power = 1;
  while (power <= value / 2) power *= 2;
  return value == 0 ? 0 : power;
}
static_assert(floor_power_of_two(1) == 1 && floor_power_of_two(3) == 2 &&
              floor_power_of_two(4096) == 4096 && floor_power_of_two(0) == 0);

constexpr uint64_t next_bucket(uint64_t lower_bytes) {
  return lower_bytes == 0 ? 1 : lower_bytes * 2;
}

MappingKey key_of(const Mapping& mapping) { return {mapping.process, mapping.id}; }

// Typed reads of one line's fields. The first problem is kept, so a handler
// reads everything it needs and checks once.
class FieldReader {
 public:
  explicit FieldReader(const LogLine& line) : line_(line) {}

  bool has(const char* key) const { return line_.fields.count(key) != 0; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  std::string text(const char* key) {
    const std::string* value = find(key);
    return value ? *value : std::string();
  }

  uint64_t unsigned_value(const char* key) {
    return checked(key, [](const std::string& text) { return parse_unsigned(text); });
  }

  int64_t signed_value(const char* key) {
    return checked(key, [](const std::string& text) { return parse_signed(text); });
  }

 private:
  const std::string* find(const char* key) {
    auto found = line_.fields.find(key);
    if (found != line_.fields.end()) return &found->second;
    fail(std::string("missing key '") + key + "'");
    return nullptr;
  }

  template <typename Parse>
  auto checked(const char* key, Parse parse) ->
      typename decltype(parse(std::string()))::value_type {
    const std::string* value = find(key);
    if (!value) return {};
    auto number = parse(*value);
    if (!number) fail(std::string("bad number for '") + key + "': '" + *value + "'");
    return number.value_or(0);
  }

  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  const LogLine& line_;
  std::string error_;
};

// The keys map, unmap and leak lines share.
Mapping read_mapping(FieldReader& fields, const LogLine& line) {
  Mapping mapping;
  mapping.pid = line.pid;
  mapping.id = fields.unsigned_value("id");
  mapping.api = fields.text("api");
  mapping.addr = fields.unsigned_value("addr");
  mapping.requested = fields.unsigned_value("requested");
  mapping.mapped = fields.unsigned_value("mapped");
  mapping.node = fields.signed_value("node");
  mapping.device = fields.signed_value("device");
  if (fields.has("chunk")) mapping.chunk = fields.unsigned_value("chunk");
  if (fields.has("source")) mapping.source = fields.text("source");
  mapping.mapped_at_us = line.timestamp_us;
  mapping.where = line.where;
  return mapping;
}

bool earlier_mapped(const Mapping& a, const Mapping& b) {
  return std::tie(a.mapped_at_us, a.pid, a.id) < std::tie(b.mapped_at_us, b.pid, b.id);
}

// The ids of one process that were ever mapped, as ranges: ids are handed
// out in order, so a long log needs a handful of ranges, not one entry per map.
class IdRanges {
 public:
  void insert(uint64_t id) {
    auto after = ranges_.upper_bound(id);  // first range starting above id
    if (after != ranges_.begin()) {
      auto before = std::prev(after);
      if (id <= before->second) return;  // inside
      if (id == before->second + 1) {
        before->second = id;
        if (after != ranges_.end() && after->first == id + 1) {
          before->second = after->second;
          ranges_.erase(after);
        }
        return;
      }
    }
    if (after != ranges_.end() && after->first == id + 1) {
      uint64_t last = after->second;
      ranges_.erase(after);
      ranges_.emplace(id, last);
      return;
    }
    ranges_.emplace(id, id);
  }

  bool contains(uint64_t id) const {
    auto after = ranges_.upper_bound(id);
    return after != ranges_.begin() && id <= std::prev(after)->second;
  }

 private:
  std::map<uint64_t, uint64_t> ranges_;  // first -> last, disjoint, not adjacent
};

// The slowest mappings so far, at most `limit`; equal times keep log order.
class SlowestMappings {
 public:
  explicit SlowestMappings(size_t limit) : limit_(limit) {}

  void add(const Mapping& mapping) {
    if (limit_ == 0) return;
    Entry entry{mapping.map_us.value_or(0), order_++, {}};
    if (entry_set_.size() == limit_ && !(entry < *entry_set_.rbegin())) return;
    entry.mapping = mapping;
    entry_set_.insert(std::move(entry));
    if (entry_set_.size() > limit_) entry_set_.erase(std::prev(entry_set_.end()));
  }

  std::vector<Mapping> slowest_first() const {
    std::vector<Mapping> out;
    for (const Entry& entry : entry_set_) out.push_back(entry.mapping);
    return out;
  }

 private:
  struct Entry {
    int64_t map_us;
    uint64_t order;
    Mapping mapping;
    bool operator<(const Entry& other) const {
      return std::tie(other.map_us, order) < std::tie(map_us, other.order);
    }
  };

  size_t limit_;
  uint64_t order_ = 0;
  std::set<Entry> entry_set_;
};

// Points kept per node for the plot: past twice this, neighbouring pairs are
// merged into their higher point, so a long log's plot keeps its peaks.
constexpr size_t kMaxTimelineSamples = 20'000;

// Walks the merged lines once, in time order, one line at a time: what it
// keeps is the live mappings and the report, not the log.
class Replay {
 public:
  explicit Replay(const AnalysisOptions& options) : options_(options) {
    report_.snapshot_is_end = !options.snapshot_us;
  }

  void add(const LogLine& line) {
    attribute(line);
    if (report_.events++ == 0) report_.first_us = line.timestamp_us;
    report_.last_us = line.timestamp_us;
    if (!snapshot_taken_ && options_.snapshot_us && line.timestamp_us > *options_.snapshot_us) {
      take_snapshot();
    }
    note_process(line);
    handle(line);
  }

  // `skipped` holds the reader's warnings and counts.
  Report finish(const std::vector<std::string>& files, const LogSet& skipped) {
    files_ = files;
    report_.files = files;
    report_.lines_skipped = skipped.lines_skipped;
    report_.snapshot_us = options_.snapshot_us.value_or(report_.last_us);
    if (!snapshot_taken_) take_snapshot();
    collect_leaks();
    collect_processes();
    groups_.collect(report_);
    collect_histogram();
    report_.slowest = slowest_.slowest_first();
    collect_fallbacks();
    report_.warnings.insert(report_.warnings.begin(), skipped.warnings.begin(),
                            skipped.warnings.end());
    sort_warnings();
    size_t not_kept = skipped.warnings_not_kept + replay_warnings_not_kept_;
    if (not_kept > 0) {
      report_.warnings.push_back(
          {{},
           std::to_string(not_kept) + " more warnings not shown (the first " +
               std::to_string(kMaxWarnings) + " of the reader and of the replay are)"});
    }
    return std::move(report_);
  }

 private:
  void handle(const LogLine& line) {
    if (line.event == "map" || line.event == "decision") on_spill_line(line);
    if (line.event == "map")
      on_map(line);
    else if (line.event == "unmap")
      on_unmap(line);
    else if (line.event == "fallback")
      on_fallback(line);
    else if (line.event == "summary")
      on_summary(line);
    else if (line.event == "leak")
      on_leak(line);
    else if (line.event == "chunk-map")
      on_chunk(line, +1);
    else if (line.event == "chunk-unmap")
      on_chunk(line, -1);
    // start, notice, config-error, free-error, node-summary and events newer
    // than this tool change no mapping: nothing to replay.
  }

  void on_map(const LogLine& line) {
    FieldReader fields(line);
    Mapping mapping = read_mapping(fields, line);
    set_origin(mapping);
    // A live-view snapshot lists mappings without their map time.
    if (fields.has("map_us")) mapping.map_us = fields.signed_value("map_us");
    if (!fields.ok()) return skip(line, fields.error());
    if (live_.count(key_of(mapping))) {
      return skip(line, "id " + std::to_string(mapping.id) +
                            " mapped again while still live (same log given twice?)");
    }
    ++process(line).maps;
    groups_.on_map(mapping);
    add_bytes(mapping, line.timestamp_us);
    note_size(mapping.requested);
    slowest_.add(mapping);
    ever_mapped_[mapping.process].insert(mapping.id);
    live_.emplace(key_of(mapping), std::move(mapping));
  }

  void on_unmap(const LogLine& line) {
    FieldReader fields(line);
    uint64_t id = fields.unsigned_value("id");
    uint64_t addr = fields.unsigned_value("addr");
    if (!fields.ok()) return skip(line, fields.error());
    auto found = find_live(process_key_, id, addr);
    if (found == live_.end()) {
      return skip(line, "unmap of id " + std::to_string(id) + " without a map line before it");
    }
    ++process(line).unmaps;
    groups_.on_unmap(found->second);
    remove_bytes(found->second, line.timestamp_us);
    live_.erase(found);
  }

  // spill mode: decision and map lines say what the device had at the
  // decision. Counts come from decisions that kept a request on the device
  // and from map lines (what really went to host memory).
  void on_spill_line(const LogLine& line) {
    FieldReader fields(line);
    if (!fields.has("device_total")) return;
    int64_t device = fields.signed_value("device");
    uint64_t total = fields.unsigned_value("device_total");
    uint64_t free = fields.unsigned_value("device_free");
    uint64_t requested = fields.unsigned_value("requested");
    if (!fields.ok()) return warn(line, fields.error() + " (spill fields ignored)");
    SpillUsage& usage = spill_usage(line.pid, device);
    usage.device_total = total;
    uint64_t in_use = total - std::min(total, free);
    if (line.event == "decision" && fields.text("placement") == "device") {
      ++usage.kept_on_device;
      if (fields.text("reason") == "below-spill-size") ++usage.kept_in_reserve;
      in_use += requested;
    } else if (line.event == "map") {
      std::string trigger = fields.text("trigger");
      if (trigger == "spill-threshold") ++usage.spilled_for_size;
      if (trigger == "spill-oom") ++usage.spilled_out_of_memory;
    }
    device_in_use_[{process_key_, device}] = in_use;
    record_spill_sample(process_key_, device, line.timestamp_us);
  }

  SpillUsage& spill_usage(int64_t pid, int64_t device) {
    auto [entry, inserted] = report_.spill.try_emplace({process_key_, device});
    if (inserted) {
      entry->second.pid = pid;
      entry->second.device = device;
    }
    return entry->second;
  }

  // Only for (process, device) pairs seen in spill mode; one step per microsecond.
  void record_spill_sample(int64_t process, int64_t device, int64_t time_us) {
    auto found = report_.spill.find({process, device});
    if (found == report_.spill.end()) return;
    SpillUsage& usage = found->second;
    SpillSample sample{time_us, device_in_use_[{process, device}], host_bytes_[{process, device}]};
    usage.peak_device_bytes = std::max(usage.peak_device_bytes, sample.device_bytes);
    usage.peak_host_bytes = std::max(usage.peak_host_bytes, sample.host_bytes);
    if (!usage.timeline.empty() && usage.timeline.back().time_us == time_us) {
      usage.timeline.pop_back();
    }
    usage.timeline.push_back(sample);
  }

  // Pinned memory: the pool's chunks, behind the user allocations.
  void on_chunk(const LogLine& line, int direction) {
    FieldReader fields(line);
    int64_t node = fields.signed_value("node");
    uint64_t bytes = fields.unsigned_value("bytes");
    if (!fields.ok()) return skip(line, fields.error());
    uint64_t& running = pinned_bytes_[node];
    if (direction < 0 && running < bytes) return skip(line, "chunk-unmap of more than was mapped");
    change_usage(report_.pinned_by_node[node], running, direction, bytes);
  }

  void on_fallback(const LogLine& line) {
    FieldReader fields(line);
    std::string step = fields.text("step");
    std::string error = fields.text("error");
    uint64_t requested = fields.has("requested") ? fields.unsigned_value("requested") : 0;
    if (!fields.ok()) return skip(line, fields.error());
    ++process(line).fallbacks;
    groups_.on_fallback(origin_.rank, origin_.host);
    FallbackCount& count = fallbacks_[{step, error}];
    count.step = std::move(step);
    count.error = std::move(error);
    ++count.count;
    count.requested_bytes += requested;
  }

  // Cross-checks the shim's own count: a difference means lines are missing.
  void on_summary(const LogLine& line) {
    process(line).exit_summary_seen = true;
    FieldReader fields(line);
    if (!fields.has("live")) return;
    uint64_t reported = fields.unsigned_value("live");
    if (!fields.ok()) return warn(line, fields.error());
    uint64_t replayed = live_count(process_key_);
    if (reported != replayed) {
      warn(line, "summary says live=" + std::to_string(reported) + " but the replay has " +
                     std::to_string(replayed) + " live mappings (map/unmap lines missing?)");
    }
  }

  void on_leak(const LogLine& line) {
    FieldReader fields(line);
    Mapping mapping = read_mapping(fields, line);
    set_origin(mapping);
    int64_t age_us = fields.has("age_us") ? fields.signed_value("age_us") : 0;
    if (!fields.ok()) return skip(line, fields.error());
    MappingKey key = key_of(mapping);
    if (live_.count(key)) {
      reported_leaks_.insert(key);
    } else if (was_unmapped(key)) {
      warn(line, "leak line for id " + std::to_string(mapping.id) + ", which was unmapped before");
    } else {
      mapping.mapped_at_us = line.timestamp_us - age_us;  // its map line is not in the log
      leaks_without_map_.emplace(key, std::move(mapping));
    }
  }

  std::map<MappingKey, Mapping>::iterator find_live(int64_t process, uint64_t id, uint64_t addr) {
    auto found = live_.find({process, id});
    if (found != live_.end()) return found;
    // A damaged id: the address is unique among one process's live mappings.
    return std::find_if(live_.begin(), live_.end(), [&](const auto& entry) {
      return entry.first.first == process && entry.second.addr == addr;
    });
  }

  // Not live but mapped before: only an unmap takes a mapping out of live_.
  bool was_unmapped(const MappingKey& key) const {
    auto found = ever_mapped_.find(key.first);
    return found != ever_mapped_.end() && found->second.contains(key.second);
  }

  uint64_t live_count(int64_t process) const {
    return static_cast<uint64_t>(
        std::count_if(live_.begin(), live_.end(),
                      [process](const auto& entry) { return entry.first.first == process; }));
  }

  void add_bytes(const Mapping& mapping, int64_t time_us) {
    host_bytes_[{mapping.process, mapping.device}] += mapping.mapped;
    record_spill_sample(mapping.process, mapping.device, time_us);
    change_usage(report_.nodes[mapping.node], node_bytes_[mapping.node], +1, mapping.mapped);
    change_usage(report_.devices[mapping.device], device_bytes_[mapping.device], +1,
                 mapping.mapped);
    record_sample(mapping.node, time_us);
  }

  void remove_bytes(const Mapping& mapping, int64_t time_us) {
    uint64_t& host = host_bytes_[{mapping.process, mapping.device}];
    host -= std::min(host, mapping.mapped);
    record_spill_sample(mapping.process, mapping.device, time_us);
    change_usage(report_.nodes[mapping.node], node_bytes_[mapping.node], -1, mapping.mapped);
    change_usage(report_.devices[mapping.device], device_bytes_[mapping.device], -1,
                 mapping.mapped);
    record_sample(mapping.node, time_us);
  }

  // `running` is the live total; usage.current_bytes waits for the snapshot.
  static void change_usage(ByteUsage& usage, uint64_t& running, int direction, uint64_t bytes) {
    if (direction > 0) {
      running += bytes;
      ++usage.maps;
    } else {
      running -= std::min(running, bytes);
    }
    usage.peak_bytes = std::max(usage.peak_bytes, running);
  }

  // Several changes in one microsecond make one step, not a spike.
  void record_sample(int64_t node, int64_t time_us) {
    std::vector<UsageSample>& samples = report_.node_timeline[node];
    if (!samples.empty() && samples.back().time_us == time_us) samples.pop_back();
    samples.push_back({time_us, node_bytes_[node]});
    if (samples.size() >= 2 * kMaxTimelineSamples) thin_out(samples);
  }

  // Halves the points: each pair becomes its higher point (at its own time).
  static void thin_out(std::vector<UsageSample>& samples) {
    size_t kept = 0;
    for (size_t i = 0; i + 1 < samples.size(); i += 2) {
      samples[kept++] = samples[i].bytes >= samples[i + 1].bytes ? samples[i] : samples[i + 1];
    }
    if (samples.size() % 2 == 1) samples[kept++] = samples.back();
    samples.resize(kept);
  }

  void note_size(uint64_t requested) {
    SizeBucket& bucket = size_buckets_[floor_power_of_two(requested)];
    bucket.lower_bytes = floor_power_of_two(requested);
    ++bucket.count;
    bucket.bytes += requested;
  }

  void take_snapshot() {
    snapshot_taken_ = true;
    for (const auto& [key, mapping] : live_) report_.live.push_back(mapping);
    std::sort(report_.live.begin(), report_.live.end(), earlier_mapped);
    for (const auto& [node, bytes] : node_bytes_) report_.nodes[node].current_bytes = bytes;
    for (const auto& [node, bytes] : pinned_bytes_) {
      report_.pinned_by_node[node].current_bytes = bytes;
    }
    for (const auto& [device, bytes] : device_bytes_) {
      report_.devices[device].current_bytes = bytes;
    }
    for (auto& [key, usage] : report_.spill) {
      if (!usage.timeline.empty()) usage.current = usage.timeline.back();
    }
    groups_.take_snapshot();
  }

  void collect_leaks() {
    for (const auto& [key, mapping] : live_) {
      report_.leaks.push_back({mapping, reported_leaks_.count(key) != 0, true});
    }
    for (const auto& [key, mapping] : leaks_without_map_) {
      report_.leaks.push_back({mapping, true, false});
    }
    std::sort(report_.leaks.begin(), report_.leaks.end(),
              [](const Leak& a, const Leak& b) { return earlier_mapped(a.mapping, b.mapping); });
    for (const Leak& leak : report_.leaks) {
      ++processes_[leak.mapping.process].leaks;
      groups_.on_leak(leak.mapping);
    }
  }

  void collect_processes() {
    for (auto& [process, summary] : processes_) {
      for (const std::string& file : files_) {
        if (files_of_process_[process].count(file)) summary.files.push_back(file);
      }
      report_.processes.push_back(summary);
    }
  }

  // Empty buckets between the smallest and largest stay, so the shape shows.
  void collect_histogram() {
    if (size_buckets_.empty()) return;
    uint64_t last = size_buckets_.rbegin()->first;
    for (uint64_t lower = size_buckets_.begin()->first;; lower = next_bucket(lower)) {
      auto found = size_buckets_.find(lower);
      report_.size_histogram.push_back(found != size_buckets_.end() ? found->second
                                                                    : SizeBucket{lower, 0, 0});
      if (lower == last) break;
    }
  }

  void collect_fallbacks() {
    for (auto& [key, count] : fallbacks_) report_.fallbacks.push_back(std::move(count));
    std::stable_sort(
        report_.fallbacks.begin(), report_.fallbacks.end(),
        [](const FallbackCount& a, const FallbackCount& b) { return a.count > b.count; });
  }

  // Reader and replay warnings interleaved as in the files, to read top-down.
  void sort_warnings() {
    auto file_index = [this](const std::string& file) {
      return std::find(files_.begin(), files_.end(), file) - files_.begin();
    };
    std::stable_sort(report_.warnings.begin(), report_.warnings.end(),
                     [&](const Warning& a, const Warning& b) {
                       return std::make_pair(file_index(a.where.file), a.where.line) <
                              std::make_pair(file_index(b.where.file), b.where.line);
                     });
  }

  void note_process(const LogLine& line) {
    ProcessSummary& summary = process(line);
    summary.last_us = line.timestamp_us;
    files_of_process_[process_key_].insert(line.where.file);
  }

  ProcessSummary& process(const LogLine& line) {
    auto [entry, inserted] = processes_.try_emplace(process_key_);
    if (inserted) {
      entry->second.pid = line.pid;
      entry->second.rank = origin_.rank;
      entry->second.host = origin_.host;
      entry->second.first_us = line.timestamp_us;
      groups_.note_process(origin_.rank, origin_.host, line.pid);
    }
    return entry->second;
  }

  // Whose line this is: a start line names its process's rank and host
  // (EGM_LOG_FILE with %r/%h); other lines take those of their process's
  // start line in the same file, else of the file's first start line (a
  // forked child writes none). Sets origin_ and process_key_.
  void attribute(const LogLine& line) {
    // Most lines are of the same process as the line before: no lookups then.
    bool is_start = line.event == "start";
    if (!is_start && attributed_ && line.pid == attributed_pid_ &&
        line.where.file == attributed_file_) {
      return;
    }
    attributed_ = true;
    attributed_pid_ = line.pid;
    attributed_file_ = line.where.file;
    std::pair<std::string, int64_t> source{line.where.file, line.pid};
    if (is_start && (line.fields.count("rank") || line.fields.count("host"))) {
      Origin origin{field_or_empty(line, "rank"), field_or_empty(line, "host")};
      origins_[source] = origin;
      file_origins_.try_emplace(line.where.file, origin);
    }
    auto found = origins_.find(source);
    if (found != origins_.end()) {
      origin_ = found->second;
    } else {
      auto of_file = file_origins_.find(line.where.file);
      origin_ = of_file != file_origins_.end() ? of_file->second : Origin{};
    }
    process_key_ = line.pid;
    if (!origin_.host.empty()) {
      auto [entry, inserted] = host_numbers_.try_emplace(origin_.host, host_numbers_.size() + 1);
      process_key_ = entry->second << 32 | (line.pid & 0xffffffff);
    }
  }

  static std::string field_or_empty(const LogLine& line, const char* key) {
    auto found = line.fields.find(key);
    return found == line.fields.end() ? std::string() : clean_log_name(found->second);
  }

  void set_origin(Mapping& mapping) const {
    mapping.process = process_key_;
    mapping.rank = origin_.rank;
    mapping.host = origin_.host;
  }

  void warn(const LogLine& line, std::string message) {
    if (report_.warnings.size() >= kMaxWarnings) {
      ++replay_warnings_not_kept_;
      return;
    }
    report_.warnings.push_back({line.where, "event=" + line.event + ": " + std::move(message)});
  }

  void skip(const LogLine& line, const std::string& message) { warn(line, message + "; skipped"); }

  AnalysisOptions options_;
  Report report_;
  std::vector<std::string> files_;
  bool snapshot_taken_ = false;
  size_t replay_warnings_not_kept_ = 0;
  SlowestMappings slowest_{options_.top_n};
  std::map<MappingKey, Mapping> live_;
  std::map<int64_t, IdRanges> ever_mapped_;
  std::set<MappingKey> reported_leaks_;
  std::map<MappingKey, Mapping> leaks_without_map_;
  std::map<int64_t, uint64_t> node_bytes_;
  std::map<int64_t, uint64_t> pinned_bytes_;
  std::map<int64_t, uint64_t> device_bytes_;
  std::map<std::pair<int64_t, int64_t>, uint64_t> host_bytes_;     // by (process, device)
  std::map<std::pair<int64_t, int64_t>, uint64_t> device_in_use_;  // by (process, device)
  std::map<uint64_t, SizeBucket> size_buckets_;
  std::map<std::pair<std::string, std::string>, FallbackCount> fallbacks_;
  std::map<int64_t, ProcessSummary> processes_;  // by process key
  std::map<int64_t, std::set<std::string>> files_of_process_;
  struct Origin {
    std::string rank;
    std::string host;
  };
  std::map<std::pair<std::string, int64_t>, Origin> origins_;  // by (file, pid)
  std::map<std::string, Origin> file_origins_;
  std::map<std::string, int64_t> host_numbers_;  // 1, 2, ... in order of appearance
  Origin origin_;                                // of the line being replayed
  int64_t process_key_ = 0;
  bool attributed_ = false;  // origin_ and process_key_ are those of (attributed_file_, _pid_)
  std::string attributed_file_;
  int64_t attributed_pid_ = 0;
  RankGroups groups_;
};

// "12.5" as microseconds: digits, optionally a point and up to six more.
std::optional<int64_t> parse_seconds_us(std::string_view text) {
  size_t point = text.find('.');
  std::string_view whole = text.substr(0, point);
  std::string_view fraction = point == std::string_view::npos ? "" : text.substr(point + 1);
  if (point != std::string_view::npos && fraction.empty()) return std::nullopt;
  if (fraction.size() > kMaxFractionDigits || whole.size() > 12) return std::nullopt;
  std::optional<int64_t> seconds = parse_signed(whole);
  std::string padded(fraction);
  padded.append(kMaxFractionDigits - fraction.size(), '0');
  std::optional<int64_t> micros = parse_signed(padded);
  if (!seconds || *seconds < 0 || !micros || *micros < 0 || whole[0] == '-') return std::nullopt;
  return *seconds * kMicrosPerSecond + *micros;
}

}  // namespace

std::optional<TimeSpec> parse_time_spec(std::string_view text) {
  if (!text.empty() && text.back() == 's') {
    std::optional<int64_t> offset_us = parse_seconds_us(text.substr(0, text.size() - 1));
    if (!offset_us) return std::nullopt;
    return TimeSpec{true, *offset_us};
  }
  std::optional<int64_t> absolute_us = parse_timestamp(text);
  if (!absolute_us) return std::nullopt;
  return TimeSpec{false, *absolute_us};
}

int64_t resolve(const TimeSpec& spec, int64_t first_event_us) {
  return spec.relative ? first_event_us + spec.us : spec.us;
}

Report analyze(const LogSet& logs, const AnalysisOptions& options) {
  Replay replay(options);
  for (const LogLine& line : logs.lines) replay.add(line);
  return replay.finish(logs.files, logs);
}

Report analyze_files(const std::vector<std::string>& paths, AnalysisOptions options,
                     const std::optional<TimeSpec>& at) {
  MergedLogReader reader(paths);
  if (at) options.snapshot_us = resolve(*at, reader.first_timestamp().value_or(0));
  Replay replay(options);
  LogLine line;
  while (reader.next(line)) replay.add(line);
  return replay.finish(reader.files(), reader.skipped());
}

}  // namespace egm::inspect
