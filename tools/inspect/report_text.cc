#include <algorithm>
#include <sstream>
#include <vector>

#include "tools/inspect/report.h"

namespace egm::inspect {
namespace {

constexpr size_t kHistogramBarWidth = 40;

// Columns padded to their widest cell; `alignment` has one 'l' or 'r' per
// column, numbers read best right-aligned.
class Table {
 public:
  Table(std::vector<std::string> headers, std::string alignment)
      : alignment_(std::move(alignment)) {
    rows_.push_back(std::move(headers));
  }

  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }

  std::string render() const {
    if (empty()) return "  (none)\n";
    std::vector<size_t> widths = column_widths();
    std::string text;
    for (const auto& row : rows_) text += render_row(row, widths);
    return text;
  }

 private:
  std::vector<size_t> column_widths() const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_) {
      for (size_t column = 0; column < row.size(); ++column) {
        widths[column] = std::max(widths[column], row[column].size());
      }
    }
    return widths;
  }

  std::string render_row(const std::vector<std::string>& row,
                         const std::vector<size_t>& widths) const {
    std::string line;
    for (size_t column = 0; column < row.size(); ++column) {
      std::string padding(widths[column] - row[column].size(), ' ');
      bool right = column < alignment_.size() && alignment_[column] == 'r';
      line += "  " + (right ? padding + row[column] : row[column] + padding);
    }
    line.erase(line.find_last_not_of(' ') + 1);  // no trailing blanks in golden files
    return line + "\n";
  }

  std::string alignment_;
  std::vector<std::vector<std::string>> rows_;
};

std::string yes_no(bool value) { return value ? "yes" : "no"; }

std::string plural(size_t count, const char* noun) {
  bool sibilant = std::string(noun).back() == 's';  // "process": "processes"
  return std::to_string(count) + " " + noun + (count == 1 ? "" : sibilant ? "es" : "s");
}

class TextRenderer {
 public:
  explicit TextRenderer(const Report& report) : report_(report) {}

  std::string render() {
    header();
    processes();
    ranks_and_hosts();
    usage("NUMA nodes", "NODE", report_.nodes);
    usage("Devices", "DEVICE", report_.devices);
    if (!report_.pinned_by_node.empty()) {
      usage("Pinned host memory (pool chunks, in use or cached)", "NODE", report_.pinned_by_node);
    }
    spill();
    live();
    leaks();
    histogram();
    slowest();
    fallbacks();
    return out_.str();
  }

 private:
  // Times in tables are offsets from the first event: short and comparable.
  std::string offset(int64_t time_us) const {
    int64_t since_first = time_us - report_.first_us;
    return (since_first < 0 ? "" : "+") + seconds_text(since_first);
  }

  std::string snapshot_name() const {
    if (report_.snapshot_is_end) return "end of log";
    return format_timestamp(report_.snapshot_us) + " (" + offset(report_.snapshot_us) + ")";
  }

  void header() {
    out_ << "egm-inspect: " << plural(report_.files.size(), "file") << ", "
         << plural(report_.events, "event") << ", " << report_.lines_skipped
         << " unreadable lines\n";
    for (const std::string& file : report_.files) out_ << "  file      " << file << "\n";
    if (report_.events == 0) {
      out_ << "  no events\n";
    } else {
      out_ << "  from      " << format_timestamp(report_.first_us) << "\n"
           << "  to        " << format_timestamp(report_.last_us) << "  ("
           << seconds_text(report_.last_us - report_.first_us) << ")\n";
    }
    out_ << "  state at  " << snapshot_name() << "\n";
    if (!report_.warnings.empty()) {
      out_ << "  warnings  " << report_.warnings.size() << " (on stderr)\n";
    }
  }

  void section(const std::string& title) { out_ << "\n" << title << "\n"; }

  void processes() {
    section("Processes");
    std::vector<std::string> headers = {"PID",       "FIRST", "LAST",         "MAPS", "UNMAPS",
                                        "FALLBACKS", "LEAKS", "EXIT SUMMARY", "FILES"};
    std::string alignment = "rllrrrrll";
    // Logs that name their rank and host (EGM_LOG_FILE with %r/%h) get two more columns.
    bool named = report_.has_ranks;
    if (named) {
      headers.insert(headers.begin() + 1, {"RANK", "HOST"});
      alignment.insert(1, "rl");
    }
    Table table(headers, alignment);
    for (const ProcessSummary& process : report_.processes) {
      std::string files = joined(process.files);
      std::vector<std::string> row = {std::to_string(process.pid),
                                      offset(process.first_us),
                                      offset(process.last_us),
                                      std::to_string(process.maps),
                                      std::to_string(process.unmaps),
                                      std::to_string(process.fallbacks),
                                      std::to_string(process.leaks),
                                      process.exit_summary_seen ? "yes" : "no (killed?)",
                                      files};
      if (named) row.insert(row.begin() + 1, {or_dash(process.rank), or_dash(process.host)});
      table.add(row);
    }
    out_ << table.render();
  }

  static std::string joined(const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
    return text;
  }

  static std::string or_dash(const std::string& text) { return text.empty() ? "-" : text; }

  // Logs of several ranks and hosts: each one's share and the sum.
  void ranks_and_hosts() {
    if (!report_.has_ranks) return;
    std::string when = "current at " + snapshot_name() + ", peak over the whole log";
    section("Ranks (mapped bytes; PLACED: all maps; " + when + ")");
    Table ranks({"RANK", "HOSTS", "PIDS", "PLACED", "CURRENT", "PEAK", "MAPS", "UNMAPS",
                 "FALLBACKS", "LEAKS"},
                "rllrrrrrrr");
    for (const GroupSummary& rank : report_.ranks) ranks.add(group_row(rank, rank.hosts));
    ranks.add(group_row(report_.total, report_.total.hosts));
    out_ << ranks.render();
    section("Hosts (mapped bytes; PLACED: all maps; " + when + ")");
    Table hosts({"HOST", "RANKS", "PIDS", "PLACED", "CURRENT", "PEAK", "MAPS", "UNMAPS",
                 "FALLBACKS", "LEAKS"},
                "lllrrrrrrr");
    for (const GroupSummary& host : report_.hosts) hosts.add(group_row(host, host.ranks));
    hosts.add(group_row(report_.total, report_.total.ranks));
    out_ << hosts.render();
  }

  static std::vector<std::string> group_row(const GroupSummary& group,
                                            const std::vector<std::string>& others) {
    // Many ranks' pids make a column nobody reads: then their count (JSON has them all).
    constexpr size_t kMostPidsShown = 8;
    std::vector<std::string> pids;
    for (int64_t pid : group.pids) pids.push_back(std::to_string(pid));
    bool list = pids.size() <= kMostPidsShown && pids.size() == group.processes;
    std::string pid_text = list ? joined(pids) : plural(group.processes, "process");
    return {group.name,
            joined(others),
            pid_text,
            human_bytes(group.placed_bytes),
            human_bytes(group.current_bytes),
            human_bytes(group.peak_bytes),
            std::to_string(group.maps),
            std::to_string(group.unmaps),
            std::to_string(group.fallbacks),
            std::to_string(group.leaks)};
  }

  void usage(const std::string& title, const char* key_name,
             const std::map<int64_t, ByteUsage>& usage_by_key) {
    section(title + " (mapped bytes; current at " + snapshot_name() + ", peak over the whole log)");
    Table table({key_name, "CURRENT", "PEAK", "MAPS"}, "rrrr");
    for (const auto& [key, usage] : usage_by_key) {
      table.add({std::to_string(key), human_bytes(usage.current_bytes),
                 human_bytes(usage.peak_bytes), std::to_string(usage.maps)});
    }
    out_ << table.render();
  }

  // Only for spill runs: where the rule put each process's requests.
  void spill() {
    if (report_.spill.empty()) return;
    section("Spill placement (per process and device; current at " + snapshot_name() +
            ", peak over the whole log)");
    Table table({"PID", "DEVICE", "KEPT", "IN RESERVE", "SPILLED: SIZE", "SPILLED: OOM",
                 "DEVICE LAST", "DEVICE PEAK", "DEVICE TOTAL", "HOST NOW", "HOST PEAK"},
                "rrrrrrrrrrr");
    for (const auto& [key, usage] : report_.spill) {
      table.add({std::to_string(usage.pid), std::to_string(usage.device),
                 std::to_string(usage.kept_on_device), std::to_string(usage.kept_in_reserve),
                 std::to_string(usage.spilled_for_size),
                 std::to_string(usage.spilled_out_of_memory),
                 human_bytes(usage.current.device_bytes), human_bytes(usage.peak_device_bytes),
                 human_bytes(usage.device_total), human_bytes(usage.current.host_bytes),
                 human_bytes(usage.peak_host_bytes)});
    }
    out_ << table.render();
    out_ << "  KEPT: requests left on the device (IN RESERVE: smaller than EGM_SPILL_MIN_SIZE, "
            "inside EGM_DEVICE_RESERVE);\n"
            "  SPILLED: SIZE: by the rule (EGM_SPILL_MIN_SIZE or more at the reserve, smaller at half of it); "
            "SPILLED: OOM: the device ran out.\n"
            "  DEVICE: the whole device's memory in use as cuMemGetInfo reported it at each "
            "decision (all processes; LAST: at the last decision before the state's time);\n"
            "  HOST: this process's bytes in host memory.\n";
  }

  static std::vector<std::string> mapping_cells(const Mapping& mapping) {
    return {
        std::to_string(mapping.pid),  std::to_string(mapping.id),     mapping.api,
        hex_text(mapping.addr),       human_bytes(mapping.requested), human_bytes(mapping.mapped),
        std::to_string(mapping.node), std::to_string(mapping.device)};
  }

  static uint64_t mapped_total(const std::vector<Mapping>& mappings) {
    uint64_t total = 0;
    for (const Mapping& mapping : mappings) total += mapping.mapped;
    return total;
  }

  void live() {
    section("Live mappings at " + snapshot_name() + ": " + std::to_string(report_.live.size()) +
            ", " + human_bytes(mapped_total(report_.live)));
    Table table({"PID", "ID", "API", "ADDR", "REQUESTED", "MAPPED", "NODE", "DEVICE", "MAPPED AT"},
                "rrllrrrrl");
    for (const Mapping& mapping : report_.live) {
      std::vector<std::string> cells = mapping_cells(mapping);
      cells.push_back(offset(mapping.mapped_at_us));
      table.add(cells);
    }
    out_ << table.render();
  }

  void leaks() {
    std::vector<Mapping> leaked;
    for (const Leak& leak : report_.leaks) leaked.push_back(leak.mapping);
    section("Leaks (mapped, never unmapped): " + std::to_string(leaked.size()) + ", " +
            human_bytes(mapped_total(leaked)));
    Table table({"PID", "ID", "API", "ADDR", "REQUESTED", "MAPPED", "NODE", "DEVICE", "MAPPED AT",
                 "MAP LINE", "LEAK LINE"},
                "rrllrrrrlll");
    for (const Leak& leak : report_.leaks) {
      std::vector<std::string> cells = mapping_cells(leak.mapping);
      cells.push_back(offset(leak.mapping.mapped_at_us));
      cells.push_back(yes_no(leak.map_seen));
      cells.push_back(yes_no(leak.reported_by_shim));
      table.add(cells);
    }
    out_ << table.render();
    explain_unfinished_processes();
  }

  // Without an exit summary the shim never said what it left behind.
  void explain_unfinished_processes() {
    for (const ProcessSummary& process : report_.processes) {
      if (process.exit_summary_seen || process.leaks == 0) continue;
      out_ << "  note: pid " << process.pid
           << " wrote no exit summary (killed, or still running): its leaks above are the"
              " mappings still live when its log ends\n";
    }
  }

  void histogram() {
    section("Requested sizes (power-of-two buckets, all maps)");
    uint64_t most = 0;
    for (const SizeBucket& bucket : report_.size_histogram) most = std::max(most, bucket.count);
    Table table({"SIZE", "COUNT", "BYTES", ""}, "lrrl");
    const std::vector<SizeBucket>& buckets = report_.size_histogram;
    for (size_t first = 0; first < buckets.size();) {
      size_t last = first;
      // A run of empty buckets reads better as one row: the gap still shows.
      while (buckets[first].count == 0 && last + 1 < buckets.size() &&
             buckets[last + 1].count == 0) {
        ++last;
      }
      table.add(histogram_row(buckets[first], buckets[last], most));
      first = last + 1;
    }
    out_ << table.render();
  }

  // One row for the buckets from `first` to `last` (the same bucket, or a run of empty ones).
  static std::vector<std::string> histogram_row(const SizeBucket& first, const SizeBucket& last,
                                                uint64_t most) {
    uint64_t upper = last.lower_bytes == 0 ? 1 : last.lower_bytes * 2;
    size_t bar = most == 0 ? 0 : static_cast<size_t>(first.count * kHistogramBarWidth / most);
    if (first.count > 0 && bar == 0) bar = 1;  // a bucket in use never looks empty
    return {"[" + short_bytes(first.lower_bytes) + ", " + short_bytes(upper) + ")",
            std::to_string(first.count), human_bytes(first.bytes), std::string(bar, '#')};
  }

  void slowest() {
    section("Slowest mappings (top " + std::to_string(report_.slowest.size()) + " by map_us)");
    Table table({"MAP_US", "PID", "ID", "API", "ADDR", "REQUESTED", "MAPPED", "NODE", "DEVICE",
                 "MAPPED AT"},
                "rrrllrrrrl");
    for (const Mapping& mapping : report_.slowest) {
      std::vector<std::string> cells = mapping_cells(mapping);
      cells.insert(cells.begin(), std::to_string(mapping.map_us.value_or(0)));
      cells.push_back(offset(mapping.mapped_at_us));
      table.add(cells);
    }
    out_ << table.render();
  }

  void fallbacks() {
    uint64_t total = 0;
    for (const FallbackCount& count : report_.fallbacks) total += count.count;
    section("Fallbacks to the real allocator: " + std::to_string(total));
    Table table({"COUNT", "STEP", "ERROR", "REQUESTED"}, "rllr");
    for (const FallbackCount& count : report_.fallbacks) {
      table.add({std::to_string(count.count), count.step, count.error,
                 human_bytes(count.requested_bytes)});
    }
    out_ << table.render();
  }

  const Report& report_;
  std::ostringstream out_;
};

}  // namespace

std::string text_report(const Report& report) { return TextRenderer(report).render(); }

}  // namespace egm::inspect
