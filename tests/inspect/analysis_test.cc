// Unit tests of the replay: mapping keys, snapshots, leaks, buckets.
#include "tools/inspect/analysis.h"

#include <gtest/gtest.h>

#include <sstream>

namespace egm::inspect {
namespace {

// A map or unmap line at second `second` of 2024-05-01T10:00.
std::string mapping_line(const std::string& event, int second, int pid, int id, uint64_t bytes,
                         int node, const std::string& extra = "map_us=100") {
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "2024-05-01T10:00:%02d.000000Z", second);
  return std::string(stamp) + " pid=" + std::to_string(pid) + " tid=" + std::to_string(pid) +
         " level=info event=" + event + " id=" + std::to_string(id) +
         " api=cudaMalloc addr=0x" + std::to_string(1000 + id) +
         " requested=" + std::to_string(bytes) + " mapped=" + std::to_string(bytes) +
         " node=" + std::to_string(node) + " device=0 " + extra + "\n";
}

Report analyze_text(const std::string& text, AnalysisOptions options = {}) {
  std::istringstream stream(text);
  LogSet logs;
  read_log_stream(stream, "run.log", logs);
  logs.files.push_back("run.log");
  merge_by_timestamp(logs);
  return analyze(logs, options);
}

TEST(AnalysisTest, KeysMappingsByPidAndId) {
  // Two processes both use id 1; unmapping one must not unmap the other.
  Report report = analyze_text(mapping_line("map", 1, 100, 1, 4096, 0) +
                               mapping_line("map", 2, 200, 1, 8192, 0) +
                               mapping_line("unmap", 3, 100, 1, 4096, 0));
  ASSERT_EQ(report.live.size(), 1u);
  EXPECT_EQ(report.live[0].pid, 200);
  EXPECT_EQ(report.nodes.at(0).current_bytes, 8192u);
  EXPECT_EQ(report.nodes.at(0).peak_bytes, 12288u);
  EXPECT_TRUE(report.warnings.empty());
}

TEST(AnalysisTest, SnapshotShowsTheStateAtThatTime) {
  std::string log = mapping_line("map", 1, 100, 1, 4096, 0) +
                    mapping_line("map", 2, 100, 2, 4096, 1) +
                    mapping_line("unmap", 3, 100, 1, 4096, 0);
  AnalysisOptions options;
  options.snapshot_us = *parse_timestamp("2024-05-01T10:00:02.500000Z");
  Report report = analyze_text(log, options);
  EXPECT_EQ(report.live.size(), 2u);
  EXPECT_EQ(report.nodes.at(0).current_bytes, 4096u);
  EXPECT_FALSE(report.snapshot_is_end);
  EXPECT_EQ(report.leaks.size(), 1u) << "leaks always describe the whole log";
}

TEST(AnalysisTest, LeakLinesConfirmOrAddLeaks) {
  std::string log = mapping_line("map", 1, 100, 1, 4096, 0) +
                    mapping_line("map", 2, 100, 2, 4096, 0) +
                    mapping_line("leak", 9, 100, 1, 4096, 0, "age_us=8000000") +
                    mapping_line("leak", 9, 100, 7, 4096, 0, "age_us=5000000");
  Report report = analyze_text(log);
  ASSERT_EQ(report.leaks.size(), 3u);
  EXPECT_TRUE(report.leaks[0].reported_by_shim);   // id 1, at 1s
  EXPECT_FALSE(report.leaks[1].reported_by_shim);  // id 2: no leak line
  EXPECT_FALSE(report.leaks[2].map_seen);          // id 7: leak line only, mapped at 4s
  EXPECT_EQ(report.leaks[2].mapping.id, 7u);
  EXPECT_EQ(format_timestamp(report.leaks[2].mapping.mapped_at_us), "2024-05-01T10:00:04.000000Z");
}

TEST(AnalysisTest, UnmapWithoutMapIsAWarningNotANegativeCount) {
  Report report = analyze_text(mapping_line("unmap", 1, 100, 5, 4096, 0));
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_EQ(report.warnings[0].where.line, 1u);
  EXPECT_TRUE(report.nodes.empty());
}

TEST(AnalysisTest, BucketsArePowersOfTwoWithoutGaps) {
  Report report = analyze_text(mapping_line("map", 1, 100, 1, 3000, 0) +
                               mapping_line("map", 2, 100, 2, 4096, 0) +
                               mapping_line("map", 3, 100, 3, 20000, 0));
  ASSERT_EQ(report.size_histogram.size(), 4u);  // 2K 4K 8K 16K
  EXPECT_EQ(report.size_histogram[0].lower_bytes, 2048u);
  EXPECT_EQ(report.size_histogram[1].count, 1u);
  EXPECT_EQ(report.size_histogram[2].count, 0u);
  EXPECT_EQ(report.size_histogram[3].bytes, 20000u);
}

TEST(AnalysisTest, SlowestAreSortedAndCut) {
  AnalysisOptions options;
  options.top_n = 2;
  Report report = analyze_text(mapping_line("map", 1, 100, 1, 1, 0, "map_us=5") +
                                   mapping_line("map", 2, 100, 2, 1, 0, "map_us=50") +
                                   mapping_line("map", 3, 100, 3, 1, 0, "map_us=20"),
                               options);
  ASSERT_EQ(report.slowest.size(), 2u);
  EXPECT_EQ(report.slowest[0].id, 2u);
  EXPECT_EQ(report.slowest[1].id, 3u);
}

// A spill-mode decision line at second `second`.
std::string decision_line(int second, int pid, const std::string& placement,
                          const std::string& reason, uint64_t requested, uint64_t free) {
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "2024-05-01T10:00:%02d.000000Z", second);
  return std::string(stamp) + " pid=" + std::to_string(pid) + " tid=1 level=info event=decision" +
         " api=cudaMalloc requested=" + std::to_string(requested) +
         " device=0 placement=" + placement + " reason=" + reason +
         " device_free=" + std::to_string(free) +
         " device_total=1000000 spill_min_size=100 device_reserve=1000\n";
}

std::string spill_fields(const std::string& trigger, uint64_t free) {
  return "map_us=5 reason=nearest trigger=" + trigger + " spill_reason=above-spill-size" +
         " device_free=" + std::to_string(free) +
         " device_total=1000000 spill_min_size=100 device_reserve=1000";
}

TEST(AnalysisTest, SpillRunsGetDeviceAndHostBytesPerProcess) {
  AnalysisOptions at_three;
  at_three.snapshot_us = *parse_timestamp("2024-05-01T10:00:03.500000Z");
  std::string log =
      decision_line(1, 100, "device", "spill-room", 600000, 1000000) +
      mapping_line("map", 2, 100, 1, 4000, 0, spill_fields("spill-threshold", 400000)) +
      decision_line(3, 100, "device", "below-spill-size", 50, 400000) +
      mapping_line("map", 4, 100, 2, 60, 0, spill_fields("spill-oom", 10)) +
      mapping_line("unmap", 5, 100, 1, 4000, 0) +
      mapping_line("map", 6, 200, 1, 8192, 0);  // another process, mode always: not a spill run
  Report report = analyze_text(log, at_three);
  ASSERT_EQ(report.spill.size(), 1u);
  const SpillUsage& usage = report.spill.begin()->second;
  EXPECT_EQ(usage.pid, 100);
  EXPECT_EQ(usage.device, 0);
  EXPECT_EQ(usage.device_total, 1000000u);
  EXPECT_EQ(usage.kept_on_device, 2u);
  EXPECT_EQ(usage.kept_in_reserve, 1u);
  EXPECT_EQ(usage.spilled_for_size, 1u);
  EXPECT_EQ(usage.spilled_out_of_memory, 1u);
  // In use = total - free, plus the request when it stayed on the device.
  ASSERT_EQ(usage.timeline.size(), 5u);
  EXPECT_EQ(usage.timeline[0].device_bytes, 600000u);
  EXPECT_EQ(usage.timeline[0].host_bytes, 0u);
  EXPECT_EQ(usage.timeline[1].device_bytes, 600000u);
  EXPECT_EQ(usage.timeline[1].host_bytes, 4000u);
  EXPECT_EQ(usage.timeline[2].device_bytes, 600050u);
  EXPECT_EQ(usage.timeline[3].device_bytes, 999990u);
  EXPECT_EQ(usage.timeline[3].host_bytes, 4060u);
  EXPECT_EQ(usage.timeline[4].host_bytes, 60u);    // the unmap
  EXPECT_EQ(usage.current.device_bytes, 600050u);  // at 3.5 s
  EXPECT_EQ(usage.current.host_bytes, 4000u);
  EXPECT_EQ(usage.peak_device_bytes, 999990u);
  EXPECT_EQ(usage.peak_host_bytes, 4060u);
}

TEST(AnalysisTest, LogsWithoutSpillFieldsHaveNoSpillSection) {
  Report report = analyze_text(mapping_line("map", 1, 100, 1, 4096, 0));
  EXPECT_TRUE(report.spill.empty());
}

// The replay keeps ranges of ids, not every unmapped id: a leak line for an
// id unmapped before is still told apart from one whose map line is missing.
TEST(AnalysisTest, LeakLineOfAnUnmappedIdIsAWarningAmongManyIds) {
  std::string log;
  for (int id = 1; id <= 50; ++id) {
    if (id == 30) continue;  // its map line is missing
    log += mapping_line("map", 1, 100, id, 4096, 0) + mapping_line("unmap", 2, 100, id, 4096, 0);
  }
  log += mapping_line("leak", 3, 100, 17, 4096, 0, "age_us=5");
  log += mapping_line("leak", 3, 100, 30, 4096, 0, "age_us=5");
  Report report = analyze_text(log);
  ASSERT_EQ(report.leaks.size(), 1u);
  EXPECT_EQ(report.leaks[0].mapping.id, 30u);
  EXPECT_FALSE(report.leaks[0].map_seen);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].message.find("id 17, which was unmapped before"), std::string::npos)
      << report.warnings[0].message;
}

// The slowest list is kept at --top entries while reading, in the order a
// full stable sort would give: slowest first, equal times in log order.
TEST(AnalysisTest, SlowestKeepsOnlyTopNWithTiesInLogOrder) {
  std::string log;
  int times[] = {5, 9, 1, 9, 7, 9, 2};
  for (int id = 1; id <= 7; ++id) {
    log += mapping_line("map", id, 100, id, 4096, 0, "map_us=" + std::to_string(times[id - 1]));
  }
  AnalysisOptions options;
  options.top_n = 4;
  Report report = analyze_text(log, options);
  std::vector<uint64_t> ids;
  for (const Mapping& mapping : report.slowest) ids.push_back(mapping.id);
  EXPECT_EQ(ids, (std::vector<uint64_t>{2, 4, 6, 5}));
}

TEST(AnalysisTest, TimeSpecsAreTimestampsOrSeconds) {
  std::optional<TimeSpec> relative = parse_time_spec("12.5s");
  ASSERT_TRUE(relative);
  EXPECT_EQ(resolve(*relative, 1'000'000), 13'500'000);
  EXPECT_EQ(parse_time_spec("3s")->us, 3'000'000);
  EXPECT_FALSE(parse_time_spec("2024-05-01T10:00:05Z")->relative);
  EXPECT_FALSE(parse_time_spec("12.5"));
  EXPECT_FALSE(parse_time_spec("-1s"));
  EXPECT_FALSE(parse_time_spec("1.s"));
  EXPECT_FALSE(parse_time_spec("s"));
  EXPECT_FALSE(parse_time_spec("yesterday"));
}

}  // namespace
}  // namespace egm::inspect

namespace egm::inspect {
namespace {

std::string start_line(int second, int pid, const std::string& rank, const std::string& host) {
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "2024-05-01T10:00:%02d.000000Z", second);
  return std::string(stamp) + " pid=" + std::to_string(pid) + " tid=" + std::to_string(pid) +
         " level=info event=start version=1 rank=" + rank + " host=" + host + " mode=always\n";
}

// Several files, as egm-inspect reads them: each one's lines, then the merge.
Report analyze_files_text(const std::vector<std::pair<std::string, std::string>>& files) {
  LogSet logs;
  for (const auto& [name, text] : files) {
    std::istringstream stream(text);
    read_log_stream(stream, name, logs);
    logs.files.push_back(name);
  }
  merge_by_timestamp(logs);
  return analyze(logs, {});
}

const GroupSummary& group(const std::vector<GroupSummary>& groups, const std::string& name) {
  for (const GroupSummary& candidate : groups) {
    if (candidate.name == name) return candidate;
  }
  static const GroupSummary missing{"<missing>"};
  return missing;
}

TEST(RankAnalysisTest, TheSamePidOnTwoHostsIsTwoProcesses) {
  // Containers on two hosts: both ranks are pid 7 with mapping id 1 live at once.
  Report report = analyze_files_text(
      {{"a.log", start_line(0, 7, "0", "node-a") + mapping_line("map", 1, 7, 1, 4096, 0) +
                     mapping_line("unmap", 4, 7, 1, 4096, 0)},
       {"b.log", start_line(0, 7, "1", "node-b") + mapping_line("map", 2, 7, 1, 8192, 0) +
                     mapping_line("unmap", 3, 7, 1, 8192, 0)}});
  EXPECT_TRUE(report.warnings.empty()) << describe(report.warnings[0]);
  ASSERT_EQ(report.processes.size(), 2u);
  EXPECT_EQ(report.processes[0].host, "node-a");
  EXPECT_EQ(report.processes[1].rank, "1");
  EXPECT_EQ(report.nodes.at(0).peak_bytes, 12288u);
  ASSERT_TRUE(report.has_ranks);
  ASSERT_EQ(report.ranks.size(), 2u);
  EXPECT_EQ(report.ranks[0].name, "0");
  EXPECT_EQ(report.ranks[0].peak_bytes, 4096u);
  EXPECT_EQ(report.ranks[1].placed_bytes, 8192u);
  EXPECT_EQ(report.ranks[1].unmaps, 1u);
  EXPECT_EQ(group(report.hosts, "node-b").ranks, std::vector<std::string>{"1"});
  EXPECT_EQ(report.total.processes, 2u);
  EXPECT_EQ(report.total.peak_bytes, 12288u);
  EXPECT_EQ(report.total.current_bytes, 0u);
}

TEST(RankAnalysisTest, PeakPerHostIsOfTheSumNotTheSumOfPeaks) {
  // Two ranks on one host that never hold memory at the same time.
  Report report = analyze_files_text(
      {{"0.log", start_line(0, 10, "0", "h") + mapping_line("map", 1, 10, 1, 1000, 0) +
                     mapping_line("unmap", 2, 10, 1, 1000, 0)},
       {"1.log", start_line(0, 11, "1", "h") + mapping_line("map", 3, 11, 1, 3000, 0)}});
  const GroupSummary& host = group(report.hosts, "h");
  EXPECT_EQ(host.peak_bytes, 3000u);
  EXPECT_EQ(host.placed_bytes, 4000u);
  EXPECT_EQ(host.current_bytes, 3000u);
  EXPECT_EQ(host.leaks, 1u);
  EXPECT_EQ(group(report.ranks, "1").leaks, 1u);
  EXPECT_EQ(group(report.ranks, "0").leaks, 0u);
}

TEST(RankAnalysisTest, AForkedChildTakesItsFilesRankAndOldLogsHaveNone) {
  // pid 21 wrote no start line into rank 3's file (a child after fork).
  Report report = analyze_files_text(
      {{"r3.log", start_line(0, 20, "3", "h") + mapping_line("map", 1, 21, 1, 4096, 0)},
       {"old.log", mapping_line("map", 2, 30, 1, 4096, 0)}});
  EXPECT_EQ(group(report.ranks, "3").maps, 1u);
  EXPECT_EQ(group(report.ranks, "-").maps, 1u);
  EXPECT_EQ(group(report.hosts, "-").pids, std::vector<int64_t>{30});
  EXPECT_FALSE(analyze_text(mapping_line("map", 2, 30, 1, 4096, 0)).has_ranks);
}

TEST(RankAnalysisTest, NamesFromTheLogCannotCarryTerminalEscapes) {
  Report report = analyze_text(
      "2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info event=start version=1 "
      "rank=\"../\x1b[31mx\" host=\"a b\x07\"\n");
  ASSERT_EQ(report.ranks.size(), 1u);
  EXPECT_EQ(report.ranks[0].name, "..___31mx");
  EXPECT_EQ(report.hosts[0].name, "a_b_");
  EXPECT_EQ(report.processes[0].host, "a_b_");
}

TEST(RankAnalysisTest, RanksAreInNumericOrderNoRankLast) {
  Report report = analyze_files_text({{"a", start_line(0, 1, "10", "h")},
                                      {"b", start_line(0, 2, "norank", "h")},
                                      {"c", start_line(0, 3, "9", "h")}});
  std::vector<std::string> names;
  for (const GroupSummary& rank : report.ranks) names.push_back(rank.name);
  EXPECT_EQ(names, (std::vector<std::string>{"9", "10", "norank"}));
}

}  // namespace
}  // namespace egm::inspect
