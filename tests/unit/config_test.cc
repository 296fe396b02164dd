#include "config/config.h"

#include <gtest/gtest.h>

#include "config/options.h"

namespace egm {
namespace {

const HostTopology kTwoNodes{{0, 1}};

ParsedConfig parse(Environment env, const HostTopology& topology = kTwoNodes) {
  return parse_config(env, topology);
}

TEST(ConfigTest, DefaultsComeFromTheOptionsTable) {
  ParsedConfig parsed = parse({});
  EXPECT_TRUE(parsed.errors.empty());
  EXPECT_TRUE(parsed.config.enable);
  EXPECT_FALSE(parsed.config.numa_node.has_value());
  EXPECT_EQ(parsed.config.log_level, LogLevel::kInfo);
  EXPECT_FALSE(parsed.config.strict);
  for (const OptionSpec& spec : kOptions) {
    if (spec.default_value.empty()) continue;
    ParsedConfig explicit_default = parse({{std::string(spec.name), std::string(spec.default_value)}});
    EXPECT_TRUE(explicit_default.errors.empty()) << spec.name << " default does not parse";
  }
}

struct BadValue {
  const char* variable;
  const char* value;
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
}

INSTANTIATE_TEST_SUITE_P(
    Config, BadValueTest,
    ::testing::Values(BadValue{"EGM_ENABLE", "maybe"}, BadValue{"EGM_ENABLE", ""},
                      BadValue{"EGM_NUMA_NODE", "abc"}, BadValue{"EGM_NUMA_NODE", "-1"},
                      BadValue{"EGM_NUMA_NODE", "2"}, BadValue{"EGM_NUMA_NODE", "1 "},
                      BadValue{"EGM_NUMA_NODE", "99999999999999999999"},
                      BadValue{"EGM_LOG_LEVEL", "loud"}, BadValue{"EGM_LOG_FILE", "/tmp/x%d"},
                      BadValue{"EGM_STRICT", "2"}));

TEST(ConfigTest, NodeThatDoesNotExistNamesTheNodesThatDo) {
  ParsedConfig parsed = parse({{"EGM_NUMA_NODE", "3"}}, HostTopology{{0, 1, 2, 5}});
  ASSERT_EQ(parsed.errors.size(), 1u);
  EXPECT_NE(parsed.errors[0].message.find("0-2,5"), std::string::npos) << parsed.errors[0].message;
}

TEST(ConfigTest, GoodValues) {
  ParsedConfig parsed = parse({{"EGM_ENABLE", "0"},
                               {"EGM_NUMA_NODE", "1"},
                               {"EGM_LOG_FILE", "/tmp/egm-%p.log"},
                               {"EGM_LOG_LEVEL", "debug"},
                               {"EGM_STRICT", "1"}});
  ASSERT_TRUE(parsed.errors.empty());
  EXPECT_FALSE(parsed.config.enable);
  EXPECT_EQ(parsed.config.numa_node, 1);
  EXPECT_EQ(parsed.config.log_file_template, "/tmp/egm-%p.log");
  EXPECT_EQ(parsed.config.log_level, LogLevel::kDebug);
  EXPECT_TRUE(parsed.config.log_level_set);
  EXPECT_TRUE(parsed.config.strict);
}

TEST(ConfigTest, EmptyNodeMeansNearest) {
  ParsedConfig parsed = parse({{"EGM_NUMA_NODE", ""}});
  EXPECT_TRUE(parsed.errors.empty());
  EXPECT_FALSE(parsed.config.numa_node.has_value());
}

TEST(ConfigTest, UnknownVariableIsWarnedWithTheClosestName) {
  ParsedConfig parsed = parse({{"EGM_NUMA_NOD", "0"}});
  EXPECT_TRUE(parsed.errors.empty());
  ASSERT_EQ(parsed.warnings.size(), 1u);
  EXPECT_NE(parsed.warnings[0].find("EGM_NUMA_NOD "), std::string::npos);
  EXPECT_NE(parsed.warnings[0].find("did you mean EGM_NUMA_NODE?"), std::string::npos);
}

TEST(HostTopologyTest, DescribesNodesAsRanges) {
  EXPECT_EQ((HostTopology{{0}}).describe_nodes(), "0");
  EXPECT_EQ((HostTopology{{0, 1, 2, 3, 5, 7, 8}}).describe_nodes(), "0-3,5,7-8");
  EXPECT_EQ((HostTopology{{}}).describe_nodes(), "none");
}

}  // namespace
}  // namespace egm
