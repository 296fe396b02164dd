// Unit tests of egm-inspect's log parser: the shim's own lines, quoting, and
// the damage a killed program leaves behind.
#include "tools/inspect/log_reader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace egm::inspect {
namespace {

constexpr const char* kMapLine =
    "2024-05-01T10:00:00.120000Z pid=4242 tid=4250 level=info event=map id=1 api=cudaMalloc "
    "addr=0x7f0000000000 requested=536870912 mapped=536870912 node=0 device=0 handle=0x1 "
    "map_us=1843 reason=nearest";

// Microseconds of 2024-05-01T10:00:00Z, worked out independently (date -u -d ... +%s).
constexpr int64_t kTenOClockUs = 1714557600LL * 1'000'000;

LogLine parse_ok(std::string_view text) {
  ParsedLine parsed = parse_log_line(text);
  EXPECT_TRUE(parsed.line.has_value()) << parsed.error;
  return parsed.line.value_or(LogLine{});
}

std::string parse_error(std::string_view text) {
  ParsedLine parsed = parse_log_line(text);
  EXPECT_FALSE(parsed.line.has_value()) << "parsed: " << text;
  return parsed.error;
}

LogSet read_text(const std::string& text) {
  std::istringstream stream(text);
  LogSet logs;
  read_log_stream(stream, "run.log", logs);
  return logs;
}

TEST(LogReaderTest, ParsesAMapLine) {
  LogLine line = parse_ok(kMapLine);
  EXPECT_EQ(line.timestamp_us, kTenOClockUs + 120'000);
  EXPECT_EQ(line.pid, 4242);
  EXPECT_EQ(line.tid, 4250);
  EXPECT_EQ(line.level, "info");
  EXPECT_EQ(line.event, "map");
  EXPECT_EQ(line.fields.at("addr"), "0x7f0000000000");
  EXPECT_EQ(line.fields.at("reason"), "nearest");
  EXPECT_EQ(line.fields.count("pid"), 0u) << "header keys are not repeated in fields";
  EXPECT_EQ(line.fields.size(), 10u);
}

TEST(LogReaderTest, UnquotesValuesWithEscapes) {
  LogLine line = parse_ok(
      R"(2024-05-01T10:00:00.000000Z pid=1 tid=1 level=warn event=notice )"
      R"(message="EGM_NUMA_NODE=\"7\" is not a node; C:\\tmp\nnext" empty="" after=x)");
  EXPECT_EQ(line.fields.at("message"), "EGM_NUMA_NODE=\"7\" is not a node; C:\\tmp\nnext");
  EXPECT_EQ(line.fields.at("empty"), "");
  EXPECT_EQ(line.fields.at("after"), "x");
}

TEST(LogReaderTest, AcceptsEqualsSignsInBareValues) {
  // The start line logs settings like this one unquoted.
  LogLine line = parse_ok(
      "2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info event=start "
      "numa_policy=weighted:0=3,1=1");
  EXPECT_EQ(line.fields.at("numa_policy"), "weighted:0=3,1=1");
}

TEST(LogReaderTest, ToleratesExtraSpacesAndCarriageReturn) {
  LogSet logs = read_text(
      "2024-05-01T10:00:00.000000Z  pid=1 tid=2  level=info event=start version=1 \r\n");
  ASSERT_EQ(logs.lines.size(), 1u);
  EXPECT_EQ(logs.lines[0].fields.at("version"), "1");
  EXPECT_TRUE(logs.warnings.empty());
}

TEST(LogReaderTest, RejectsLinesWithoutATimestamp) {
  EXPECT_NE(parse_error("Segmentation fault (core dumped)").find("timestamp"), std::string::npos);
  EXPECT_NE(parse_error("").find("timestamp"), std::string::npos);
  parse_error("2024-13-01T10:00:00.000000Z pid=1 tid=1 level=info event=start");
  parse_error("2024-02-30T10:00:00.000000Z pid=1 tid=1 level=info event=start");
  parse_error("2024-05-01T10:00:00.000000 pid=1 tid=1 level=info event=start");
}

TEST(LogReaderTest, RejectsCutShortQuotedValues) {
  std::string error = parse_error(
      "2024-05-01T10:00:00.000000Z pid=1 tid=1 level=warn event=notice message=\"worker 3 is");
  EXPECT_NE(error.find("unterminated"), std::string::npos) << error;
}

TEST(LogReaderTest, RejectsMissingHeaderKeys) {
  EXPECT_EQ(parse_error("2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info id=3"),
            "missing key 'event'");
  EXPECT_EQ(parse_error("2024-05-01T10:00:00.000000Z tid=1 level=info event=map"),
            "missing key 'pid'");
}

TEST(LogReaderTest, RejectsBadHeaderValues) {
  EXPECT_EQ(parse_error("2024-05-01T10:00:00.000000Z pid=12x tid=1 level=info event=map"),
            "bad pid '12x'");
  EXPECT_EQ(parse_error("2024-05-01T10:00:00.000000Z pid=1 tid=1 level=loud event=map"),
            "unknown level 'loud'");
}

TEST(LogReaderTest, RejectsTwoLinesRunTogether) {
  std::string error = parse_error(
      "2024-05-01T10:00:01.900000Z pid=6 tid=6 level=info event=map id=6 addr=0x7f30"
      "2024-05-01T10:00:01.950000Z pid=6 tid=7 level=info event=unmap id=8");
  EXPECT_NE(error.find("appears twice"), std::string::npos) << error;
}

TEST(LogReaderTest, RejectsTokensThatAreNotKeyValuePairs) {
  parse_error("2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info event=map garbage");
  parse_error("2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info event=map id=");
  parse_error("2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info event=map a=\"x\"y");
  parse_error("2024-05-01T10:00:00.000000Z pid=1 tid=1 level=info event=map a=\"bad \\q\"");
}

TEST(LogReaderTest, SkipsBadLinesWithFileAndLineAndKeepsTheRest) {
  LogSet logs = read_text(std::string(kMapLine) + "\n" +
                          "garbage\n"
                          "\n" +
                          kMapLine + "\n");
  EXPECT_EQ(logs.lines.size(), 2u);
  EXPECT_EQ(logs.lines[1].where.line, 4u);
  ASSERT_EQ(logs.warnings.size(), 1u);
  EXPECT_EQ(logs.lines_skipped, 1u);
  EXPECT_EQ(describe(logs.warnings[0]).rfind("run.log:2: no valid timestamp", 0), 0u)
      << describe(logs.warnings[0]);
}

TEST(LogReaderTest, SkipsALastLineWithoutNewline) {
  // Even when what is left parses, its last number may be cut short.
  LogSet logs = read_text(std::string(kMapLine) + "\n" + kMapLine);
  EXPECT_EQ(logs.lines.size(), 1u);
  ASSERT_EQ(logs.warnings.size(), 1u);
  EXPECT_EQ(logs.warnings[0].where.line, 2u);
  EXPECT_NE(logs.warnings[0].message.find("no newline"), std::string::npos);
}

TEST(LogReaderTest, MergesByTimestampKeepingTiesInReadingOrder) {
  LogSet logs;
  std::istringstream first(
      "2024-05-01T10:00:02.000000Z pid=1 tid=1 level=info event=a\n"
      "2024-05-01T10:00:03.000000Z pid=1 tid=1 level=info event=b\n");
  std::istringstream second(
      "2024-05-01T10:00:01.000000Z pid=2 tid=2 level=info event=c\n"
      "2024-05-01T10:00:02.000000Z pid=2 tid=2 level=info event=d\n");
  read_log_stream(first, "a.log", logs);
  read_log_stream(second, "b.log", logs);
  merge_by_timestamp(logs);
  std::string order;
  for (const LogLine& line : logs.lines) order += line.event;
  EXPECT_EQ(order, "cadb");
}

TEST(LogReaderTest, TimestampsRoundTrip) {
  std::optional<int64_t> parsed = parse_timestamp("2024-02-29T23:59:59.999999Z");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(format_timestamp(*parsed), "2024-02-29T23:59:59.999999Z");
  EXPECT_EQ(parse_timestamp("2024-05-01T10:00:00Z"), kTenOClockUs);
  EXPECT_EQ(parse_timestamp("2024-05-01T10:00:00.5Z"), kTenOClockUs + 500'000);
  EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_timestamp(-1), "1969-12-31T23:59:59.999999Z");
}

TEST(LogReaderTest, NumbersMustBeWhole) {
  EXPECT_EQ(parse_unsigned("0x7f00"), 0x7f00u);
  EXPECT_EQ(parse_unsigned("4096"), 4096u);
  EXPECT_FALSE(parse_unsigned("12abc"));
  EXPECT_FALSE(parse_unsigned("-1"));
  EXPECT_FALSE(parse_unsigned("0x"));
  EXPECT_FALSE(parse_unsigned(""));
  EXPECT_FALSE(parse_unsigned("99999999999999999999999"));
  EXPECT_EQ(parse_signed("-1"), -1);
  EXPECT_FALSE(parse_signed("1.5"));
}

std::string temp_file(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string line_at(int second, int pid, uint64_t id) {
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "2024-05-01T10:00:%02d.000000Z", second);
  return std::string(stamp) + " pid=" + std::to_string(pid) +
         " tid=1 level=info event=map id=" + std::to_string(id) + "\n";
}

// The streaming reader gives what reading everything and sorting would.
TEST(MergedLogReaderTest, PutsLateLinesInPlaceAndMergesFilesLikeAStableSort) {
  std::string a = line_at(1, 1, 1) + line_at(3, 1, 2) + line_at(2, 1, 3) + line_at(5, 1, 4);
  std::string b = line_at(2, 2, 1) + line_at(3, 2, 2) + line_at(4, 2, 3);
  std::vector<std::string> paths = {temp_file("a.log", a), temp_file("b.log", b)};
  LogSet expected;
  std::istringstream first(a), second(b);
  read_log_stream(first, paths[0], expected);
  read_log_stream(second, paths[1], expected);
  merge_by_timestamp(expected);
  MergedLogReader reader(paths);
  EXPECT_EQ(reader.first_timestamp(), expected.lines.front().timestamp_us);
  LogLine line;
  for (const LogLine& wanted : expected.lines) {
    ASSERT_TRUE(reader.next(line));
    EXPECT_EQ(line.pid, wanted.pid);
    EXPECT_EQ(line.fields.at("id"), wanted.fields.at("id"));
    EXPECT_EQ(line.where.line, wanted.where.line);
  }
  EXPECT_FALSE(reader.next(line));
}

TEST(MergedLogReaderTest, RefusesDevicesAndDirectories) {
  for (const char* path : {"/dev/zero", "/dev/urandom", "/"}) {
    EXPECT_THROW(MergedLogReader({path}), std::runtime_error) << path;
  }
}

// Memory never depends on a line's length: one warning, then the next line.
TEST(MergedLogReaderTest, SkipsALineLongerThanTheLimit) {
  std::string path =
      temp_file("long.log", std::string(3 * kMaxLineBytes, 'z') + "\n" + line_at(1, 1, 7));
  MergedLogReader reader({path});
  LogLine line;
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line.fields.at("id"), "7");
  EXPECT_EQ(line.where.line, 2u);
  ASSERT_EQ(reader.skipped().warnings.size(), 1u);
  EXPECT_NE(reader.skipped().warnings[0].message.find("longer than 1 MiB"), std::string::npos);
}

TEST(MergedLogReaderTest, KeepsAThousandWarningsAndCountsTheRest) {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "junk\n";
  LogSet logs = read_log_files({temp_file("junk.log", text)});
  EXPECT_EQ(logs.warnings.size(), kMaxWarnings);
  EXPECT_EQ(logs.warnings_not_kept, 5000 - kMaxWarnings);
  EXPECT_EQ(logs.lines_skipped, 5000u);
}

}  // namespace
}  // namespace egm::inspect
