// Unit tests of the replay: mapping keys, snapshots, leaks, buckets.
#include "tools/inspect/analysis.h"

#include <gtest/gtest.h>

#include <sstream>

namespace egm_inspect {
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
}  // namespace egm_inspect
