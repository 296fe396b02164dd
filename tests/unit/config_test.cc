#include "config/config.h"

#include <gtest/gtest.h>

#include "config/options.h"

namespace egm {
namespace {

constexpr size_t kGiB = size_t{1} << 30;

// Four nodes with memory (0-2 and 5), 64 GiB each; node 3 and 4 have none.
const HostTopology kFourNodes{{{0, 64 * kGiB}, {1, 64 * kGiB}, {2, 64 * kGiB}, {5, 64 * kGiB}}, {}};

ParsedConfig parse(Environment env) { return load_config(env, kFourNodes); }

TEST(ConfigTest, DefaultsComeFromTheOptionsTable) {
  ParsedConfig parsed = parse({});
  EXPECT_TRUE(parsed.errors.empty());
  EXPECT_TRUE(parsed.config.enable);
  EXPECT_EQ(parsed.config.mode, Mode::kAlways);
  EXPECT_EQ(parsed.config.numa_policy.kind, NumaPolicyKind::kNearest);
  EXPECT_EQ(parsed.config.fallback, Fallback::kDevice);
  EXPECT_EQ(parsed.config.max_size, SIZE_MAX);
  EXPECT_EQ(parsed.config.device_reserve, kGiB);
  for (const OptionSpec& spec : kOptions) {
    if (spec.default_value.empty()) continue;
    ParsedConfig explicit_default =
        parse({{std::string(spec.name), std::string(spec.default_value)}});
    EXPECT_TRUE(explicit_default.errors.empty()) << spec.name << " default does not parse";
    EXPECT_EQ(explicit_default.summary(), parsed.summary()) << spec.name;
  }
}

struct BadValue {
  const char* variable;
  const char* value;
  const char* reason = "";  // a phrase the message must contain
};

class BadValueTest : public ::testing::TestWithParam<BadValue> {};

TEST_P(BadValueTest, NamesTheVariableTheValueAndTheAcceptedForm) {
  const BadValue& bad = GetParam();
  ParsedConfig parsed = parse({{bad.variable, bad.value}});
  ASSERT_EQ(parsed.errors.size(), 1u);
  const ConfigError& error = parsed.errors[0];
  EXPECT_EQ(error.variable, bad.variable);
  EXPECT_EQ(error.value, bad.value);
  EXPECT_EQ(error.accepted, find_option(bad.variable)->accepted);
  std::string line = error.to_string();
  EXPECT_NE(line.find(bad.variable), std::string::npos) << line;
  EXPECT_NE(line.find(std::string("\"") + bad.value + "\""), std::string::npos) << line;
  EXPECT_NE(line.find(error.accepted), std::string::npos) << line;
  EXPECT_NE(line.find(bad.reason), std::string::npos) << line;
}

INSTANTIATE_TEST_SUITE_P(
    Config, BadValueTest,
    ::testing::Values(
        BadValue{"EGM_ENABLE", "maybe"}, BadValue{"EGM_ENABLE", ""},
        BadValue{"EGM_MODE", "sometimes"}, BadValue{"EGM_NUMA_POLICY", "closest"},
        BadValue{"EGM_POINTER_ATTRIBUTES", "honest"}, BadValue{"EGM_POINTER_ATTRIBUTES", ""},
        BadValue{"EGM_NUMA_POLICY", "bind"}, BadValue{"EGM_NUMA_POLICY", "bind:"},
        BadValue{"EGM_NUMA_POLICY", "bind:3", "node 3 does not exist"},
        BadValue{"EGM_NUMA_POLICY", "bind:0-9",
                 "node 3 does not exist or has no memory (nodes with memory: 0-2,5)"},
        BadValue{"EGM_NUMA_POLICY", "bind:2-1"}, BadValue{"EGM_NUMA_POLICY", "bind:-1"},
        BadValue{"EGM_NUMA_POLICY", "nearest:0"}, BadValue{"EGM_NUMA_POLICY", "preferred:0,1"},
        BadValue{"EGM_NUMA_POLICY", "interleave:0,,1"},
        BadValue{"EGM_NUMA_POLICY", "weighted:0=1,0=2", "listed twice"},
        BadValue{"EGM_NUMA_POLICY", "weighted:0=0"}, BadValue{"EGM_NUMA_POLICY", "weighted:0"},
        BadValue{"EGM_NUMA_POLICY", "weighted:0=-1"}, BadValue{"EGM_NUMA_POLICY", "most-free:0"},
        BadValue{"EGM_APIS", "cudaMallocHost"}, BadValue{"EGM_APIS", ""},
        BadValue{"EGM_MIN_SIZE", "-1"}, BadValue{"EGM_MIN_SIZE", "1.5G"},
        BadValue{"EGM_MIN_SIZE", "12X"}, BadValue{"EGM_MIN_SIZE", "99999999999999999999"},
        BadValue{"EGM_MIN_SIZE", "17179869184T"}, BadValue{"EGM_MAX_SIZE", "G"},
        BadValue{"EGM_DEVICES", "zero"}, BadValue{"EGM_DEVICES", ""},
        BadValue{"EGM_NODE_LIMIT", "0=64G"},
        BadValue{"EGM_NODE_LIMIT", "0:64G,0:1G", "listed twice"},
        BadValue{"EGM_NODE_LIMIT", "3:1G", "node 3 does not exist"},
        BadValue{"EGM_NODE_LIMIT", "0:65G", "above the node's memory (64G)"},
        BadValue{"EGM_FALLBACK", "host"}, BadValue{"EGM_DEVICE_RESERVE", "lots"},
        BadValue{"EGM_HOST_ACCESS", "2"}, BadValue{"EGM_GRANULARITY", "maximum"},
        BadValue{"EGM_LOG_LEVEL", "loud"}, BadValue{"EGM_LOG_FILE", "/tmp/x%d", "only %p"},
        BadValue{"EGM_STRICT", "2"},
        BadValue{"EGM_CONFIG", "/nonexistent/egm.conf", "cannot open"}));

TEST(ConfigTest, GoodValues) {
  ParsedConfig parsed = parse({{"EGM_ENABLE", "0"},
                               {"EGM_MODE", "spill"},
                               {"EGM_NUMA_POLICY", "interleave:0-2,5"},
                               {"EGM_APIS", "cudaMallocManaged"},
                               {"EGM_MIN_SIZE", "64KiB"},
                               {"EGM_MAX_SIZE", "2G"},
                               {"EGM_DEVICES", "0,2-3"},
                               {"EGM_NODE_LIMIT", "0:64G,1:512M"},
                               {"EGM_FALLBACK", "next-node"},
                               {"EGM_DEVICE_RESERVE", "256MiB"},
                               {"EGM_HOST_ACCESS", "0"},
                               {"EGM_GRANULARITY", "recommended"},
                               {"EGM_LOG_FILE", "/tmp/egm-%p.log"},
                               {"EGM_LOG_LEVEL", "debug"},
                               {"EGM_STRICT", "1"}});
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0].to_string();
  const Config& c = parsed.config;
  EXPECT_FALSE(c.enable);
  EXPECT_EQ(c.mode, Mode::kSpill);
  EXPECT_EQ(c.numa_policy.kind, NumaPolicyKind::kInterleave);
  EXPECT_EQ(c.numa_policy.nodes, (std::vector<int>{0, 1, 2, 5}));
  EXPECT_FALSE(c.api_selected(Api::kCudaMalloc));
  EXPECT_TRUE(c.api_selected(Api::kCudaMallocManaged));
  EXPECT_EQ(c.min_size, 64u << 10);
  EXPECT_EQ(c.max_size, 2 * kGiB);
  EXPECT_TRUE(c.device_selected(3));
  EXPECT_FALSE(c.device_selected(1));
  EXPECT_EQ(c.node_limits, (std::map<int, size_t>{{0, 64 * kGiB}, {1, 512u << 20}}));
  EXPECT_EQ(c.fallback, Fallback::kNextNode);
  EXPECT_EQ(c.device_reserve, 256u << 20);
  EXPECT_FALSE(c.host_access);
  EXPECT_EQ(c.granularity, Granularity::kRecommended);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_TRUE(c.strict);
  EXPECT_NE(parsed.summary().find("numa_policy=interleave:0-2,5"), std::string::npos);
}

struct PolicyCase {
  const char* text;
  NumaPolicyKind kind;
  std::vector<int> nodes;
  std::vector<unsigned> weights;
};

class PolicyParseTest : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(PolicyParseTest, ParsesAndDescribesItself) {
  const PolicyCase& expected = GetParam();
  ParsedConfig parsed = parse({{"EGM_NUMA_POLICY", expected.text}});
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0].to_string();
  EXPECT_EQ(parsed.config.numa_policy.kind, expected.kind);
  EXPECT_EQ(parsed.config.numa_policy.nodes, expected.nodes);
  EXPECT_EQ(parsed.config.numa_policy.weights, expected.weights);
  ParsedConfig again = parse({{"EGM_NUMA_POLICY", parsed.config.numa_policy.describe()}});
  EXPECT_EQ(again.config.numa_policy.nodes, expected.nodes) << "describe() must round-trip";
}

INSTANTIATE_TEST_SUITE_P(
    Config, PolicyParseTest,
    ::testing::Values(PolicyCase{"nearest", NumaPolicyKind::kNearest, {}, {}},
                      PolicyCase{"most-free", NumaPolicyKind::kMostFree, {}, {}},
                      PolicyCase{"bind:1", NumaPolicyKind::kBind, {1}, {}},
                      PolicyCase{"bind:all", NumaPolicyKind::kBind, {0, 1, 2, 5}, {}},
                      PolicyCase{"bind:2,0-1,1", NumaPolicyKind::kBind, {0, 1, 2}, {}},
                      PolicyCase{"preferred:5", NumaPolicyKind::kPreferred, {5}, {}},
                      PolicyCase{"interleave:0,5", NumaPolicyKind::kInterleave, {0, 5}, {}},
                      PolicyCase{"weighted:0=3,5=1", NumaPolicyKind::kWeighted, {0, 5}, {3, 1}}));

TEST(ConfigTest, SizesTakeBinarySuffixes) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("4K"), 4096u);
  EXPECT_EQ(parse_size("4KiB"), 4096u);
  EXPECT_EQ(parse_size("4KB"), 4096u);
  EXPECT_EQ(parse_size("3M"), 3u << 20);
  EXPECT_EQ(parse_size("2GiB"), 2 * kGiB);
  EXPECT_EQ(parse_size("1T"), kGiB * 1024);
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_FALSE(parse_size("").has_value());
  EXPECT_FALSE(parse_size("+5").has_value());
  EXPECT_FALSE(parse_size(" 5").has_value());
  EXPECT_FALSE(parse_size("16777216T").has_value()) << "2^64 overflows";
  EXPECT_EQ(format_size(64 * kGiB), "64G");
  EXPECT_EQ(format_size(4097), "4097");
}

TEST(ConfigTest, FileIsReadAndTheEnvironmentWins) {
  std::string file =
      "# egm settings\n"
      "EGM_MODE=spill\n"
      "\n"
      "  EGM_MIN_SIZE=1M  \n"
      "EGM_FALLBACK=error\n";
  ParsedConfig parsed = parse_config({{"EGM_FALLBACK", "next-node"}}, kFourNodes, file, "egm.conf");
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0].to_string();
  EXPECT_EQ(parsed.config.mode, Mode::kSpill);
  EXPECT_EQ(parsed.config.min_size, 1u << 20);
  EXPECT_EQ(parsed.config.fallback, Fallback::kNextNode);
}

TEST(ConfigTest, FileErrorsNameTheLine) {
  ParsedConfig parsed =
      parse_config({}, kFourNodes, "EGM_MODE=spill\nEGM_MODE=sometimes\njunk\n", "egm.conf");
  ASSERT_EQ(parsed.errors.size(), 2u);
  std::string both = parsed.errors[0].to_string() + "\n" + parsed.errors[1].to_string();
  EXPECT_NE(both.find("EGM_MODE=\"sometimes\" (egm.conf:2)"), std::string::npos) << both;
  EXPECT_NE(both.find("EGM_CONFIG=\"junk\" (egm.conf:3)"), std::string::npos) << both;
}

TEST(ConfigTest, MinAboveMaxIsAnError) {
  ParsedConfig parsed = parse({{"EGM_MIN_SIZE", "2G"}, {"EGM_MAX_SIZE", "1G"}});
  ASSERT_EQ(parsed.errors.size(), 1u);
  EXPECT_EQ(parsed.errors[0].variable, "EGM_MIN_SIZE");
}

TEST(ConfigTest, UnknownVariableIsWarnedWithTheClosestName) {
  ParsedConfig parsed = parse({{"EGM_NUMA_POLCY", "nearest"}});
  EXPECT_TRUE(parsed.errors.empty());
  ASSERT_EQ(parsed.warnings.size(), 1u);
  EXPECT_NE(parsed.warnings[0].find("EGM_NUMA_POLCY "), std::string::npos);
  EXPECT_NE(parsed.warnings[0].find("did you mean EGM_NUMA_POLICY?"), std::string::npos);
}

TEST(HostTopologyTest, DescribesNodesAsRanges) {
  EXPECT_EQ(kFourNodes.describe_nodes(), "0-2,5");
  EXPECT_EQ(format_int_list({0, 1, 2, 3, 5, 7, 8}), "0-3,5,7-8");
  EXPECT_EQ(HostTopology{}.describe_nodes(), "none");
}

}  // namespace
}  // namespace egm
