// Runs everywhere (no GPU): the log checks of gpu_alloc_test must be right
// before they are trusted on the GPU machine.
#include "tests/gpu/egm_log_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace egm_test {
namespace {

constexpr const char* kMapLine =
    "2025-01-02T03:04:05.123456Z pid=42 tid=43 level=info event=map id=7 api=cudaMalloc "
    "addr=0x7f0000200000 requested=3145729 mapped=4194304 node=0 device=0 handle=0x55 map_us=12";

TEST(ParseLogfmtLine, ReadsBareFieldsAndSkipsTheTimestamp) {
  LogFields fields = parse_logfmt_line(kMapLine);
  EXPECT_EQ(fields["event"], "map");
  EXPECT_EQ(fields["api"], "cudaMalloc");
  EXPECT_EQ(fields["addr"], "0x7f0000200000");
  EXPECT_EQ(fields["requested"], "3145729");
  EXPECT_EQ(fields.count("2025-01-02T03:04:05.123456Z"), 0u);
}

TEST(ParseLogfmtLine, UnquotesEscapedValues) {
  LogFields fields = parse_logfmt_line(R"(level=warn event=notice message="a \"b\" c\\d" x=1)");
  EXPECT_EQ(fields["message"], R"(a "b" c\d)");
  EXPECT_EQ(fields["x"], "1");
}

TEST(ExpandPidTemplate, FollowsTheShimsRule) {
  EXPECT_EQ(expand_pid_template("/tmp/egm-%p.log", 123), "/tmp/egm-123.log");
  EXPECT_EQ(expand_pid_template("/tmp/100%%-%p", 5), "/tmp/100%-5");
  EXPECT_EQ(expand_pid_template("/tmp/plain.log", 5), "/tmp/plain.log");
}

TEST(ParseUnsigned, AcceptsHexAndDecimalOnly) {
  EXPECT_EQ(parse_unsigned("0x7f0000200000"), 0x7f0000200000ull);
  EXPECT_EQ(parse_unsigned("0X7F0000200000"), 0x7f0000200000ull);
  EXPECT_EQ(parse_unsigned("3145729"), 3145729ull);
  EXPECT_EQ(parse_unsigned(""), std::nullopt);
  EXPECT_EQ(parse_unsigned("0x"), std::nullopt);
  EXPECT_EQ(parse_unsigned("-1"), std::nullopt);
  EXPECT_EQ(parse_unsigned("12k"), std::nullopt);
}

TEST(Matches, ComparesAddressesAsNumbers) {
  LogFields fields = parse_logfmt_line(kMapLine);
  EventQuery query{"map", 0x7f0000200000ull, "cudaMalloc", 3145729};
  EXPECT_TRUE(matches(fields, query));
  fields["addr"] = "0x00007f0000200000";
  EXPECT_TRUE(matches(fields, query));
}

TEST(Matches, RejectsAnyDifferingField) {
  LogFields fields = parse_logfmt_line(kMapLine);
  EXPECT_FALSE(matches(fields, {"unmap", 0x7f0000200000ull, std::nullopt, std::nullopt}));
  EXPECT_FALSE(matches(fields, {"map", 0x7f0000200001ull, std::nullopt, std::nullopt}));
  EXPECT_FALSE(matches(fields, {"map", 0x7f0000200000ull, "cudaMallocManaged", std::nullopt}));
  EXPECT_FALSE(matches(fields, {"map", 0x7f0000200000ull, std::nullopt, 3145728}));
  EXPECT_FALSE(matches(fields, {"map", 0x7f0000200000ull, std::nullopt, std::nullopt, "8"}));
  EXPECT_TRUE(matches(fields, {"map", 0x7f0000200000ull, std::nullopt, std::nullopt, "7"}));
}

TEST(FindEvent, StartsAtTheGivenLine) {
  std::vector<LogFields> events = {parse_logfmt_line(kMapLine), parse_logfmt_line(kMapLine)};
  EventQuery query{"map", 0x7f0000200000ull, std::nullopt, std::nullopt};
  EXPECT_EQ(find_event(events, 0, query), 0u);
  EXPECT_EQ(find_event(events, 1, query), 1u);
  EXPECT_EQ(find_event(events, 2, query), std::nullopt);
}

TEST(WaitForEvent, FindsALineInTheFileAndGivesUpOnAMissingOne) {
  std::string path = ::testing::TempDir() + "egm_log_reader_test.log";
  {
    std::ofstream file(path);
    file << "2025-01-02T03:04:05.000000Z pid=1 tid=1 level=info event=start version=x\n"
         << kMapLine << "\n";
  }
  EventQuery present{"map", 0x7f0000200000ull, "cudaMalloc", 3145729};
  EventQuery absent{"unmap", 0x7f0000200000ull, std::nullopt, std::nullopt};
  std::optional<LogFields> found = wait_for_event(path, 0, present, std::chrono::milliseconds(0));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ((*found)["mapped"], "4194304");
  EXPECT_FALSE(wait_for_event(path, 0, absent, std::chrono::milliseconds(50)).has_value());
  EXPECT_FALSE(wait_for_event(path + ".missing", 0, present, std::chrono::milliseconds(0)));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace egm_test
