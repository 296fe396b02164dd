#include "config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <new>

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
  EXPECT_FALSE(parsed.config.device_reserve.has_value());  // auto
  EXPECT_FALSE(parsed.config.spill_min_size.has_value());  // auto
  for (const OptionSpec& spec : kOptions) {
    if (spec.default_value.empty()) continue;
    ParsedConfig explicit_default =
        parse({{std::string(spec.name), std::string(spec.default_value)}});
    EXPECT_TRUE(explicit_default.errors.empty()) << spec.name << " default does not parse";
    EXPECT_EQ(explicit_default.summary(), parsed.summary()) << spec.name;
  }
}

// The start line is parsed by egm-inspect and by people's scripts: its keys
// and values, in this order, are those of every earlier version.
TEST(ConfigTest, SummaryKeepsTheStartLinesKeysAndValues) {
  EXPECT_EQ(parse({}).summary(),
            "mode=always numa_policy=nearest apis=cudaMalloc,cudaMallocManaged,cudaMallocAsync,"
            "cudaMallocPitch,cuMemAlloc,cuMemAllocManaged,cuMemAllocPitch,cuMemCreate min_size=0 "
            "max_size=unlimited devices=all node_limit=none fallback=device device_reserve=auto "
            "spill_min_size=auto host_access=1 meminfo=device pointer_attributes=requested "
            "hook_driver=1 pool_limit=1073741824 pool_prealloc=0 suballoc=1 peer_access=enabled "
            "granularity=minimum log_level=info staging=0 staging_window=2147483648");
  ParsedConfig parsed = parse({{"EGM_MODE", "spill"},
                               {"EGM_NUMA_POLICY", "weighted:0=3,1=1"},
                               {"EGM_APIS", "cudaMalloc,cuMemAlloc"},
                               {"EGM_MIN_SIZE", "4K"},
                               {"EGM_MAX_SIZE", "1G"},
                               {"EGM_DEVICES", "0-1,3"},
                               {"EGM_NODE_LIMIT", "0:64G,1:32G"},
                               {"EGM_FALLBACK", "next-node"},
                               {"EGM_DEVICE_RESERVE", "256M"},
                               {"EGM_SPILL_MIN_SIZE", "0"},
                               {"EGM_HOST_ACCESS", "0"},
                               {"EGM_MEMINFO", "device+host"},
                               {"EGM_POINTER_ATTRIBUTES", "physical"},
                               {"EGM_HOOK_DRIVER", "0"},
                               {"EGM_POOL_LIMIT", "0"},
                               {"EGM_POOL_PREALLOC", "2M"},
                               {"EGM_SUBALLOC", "0"},
                               {"EGM_PEER_ACCESS", "all"},
                               {"EGM_GRANULARITY", "recommended"},
                               {"EGM_LOG_LEVEL", "warning"},
                               {"EGM_STAGING", "1"},
                               {"EGM_STAGING_WINDOW", "512M"}});
  EXPECT_TRUE(parsed.errors.empty());
  EXPECT_EQ(parsed.summary(),
            "mode=spill numa_policy=weighted:0=3,1=1 apis=cudaMalloc,cuMemAlloc min_size=4096 "
            "max_size=1073741824 devices=0-1,3 node_limit=0:64G,1:32G fallback=next-node "
            "device_reserve=268435456 spill_min_size=0 host_access=0 meminfo=device+host "
            "pointer_attributes=physical hook_driver=0 pool_limit=0 pool_prealloc=2097152 "
            "suballoc=0 peer_access=all granularity=recommended log_level=warn staging=1 "
            "staging_window=536870912");
}

// Config's fields have no initializers: the table's rows set them. A field
// no row sets would keep whatever its memory held.
TEST(ConfigTest, EveryFieldIsSetByTheTable) {
  auto built_over = [](unsigned char fill) {
    alignas(Config) static unsigned char memory[2][sizeof(Config)];
    unsigned char* where = memory[fill == 0 ? 0 : 1];
    std::memset(where, fill, sizeof(Config));
    return new (where) Config;
  };
  Config* over_zeros = built_over(0x00);
  Config* over_ones = built_over(0xff);
  ParsedConfig zeros, ones;
  zeros.config = *over_zeros;
  ones.config = *over_ones;
  EXPECT_EQ(zeros.summary(), ones.summary());
  EXPECT_EQ(zeros.summary(), parse({}).summary());
  // A bool's bytes, not its value: an unset bool over 0xff may read as either.
  auto byte_of = [](const bool& flag) {
    unsigned char byte = 0;
    std::memcpy(&byte, &flag, 1);
    return static_cast<int>(byte);
  };
  for (const Config* config : {over_zeros, over_ones}) {
    EXPECT_EQ(byte_of(config->enable), 1);
    EXPECT_EQ(byte_of(config->strict), 0);
    EXPECT_EQ(byte_of(config->log_level_set), 0);
    EXPECT_EQ(config->log_file_template, "");
    EXPECT_EQ(config->snapshot_template, "");
  }
  over_zeros->~Config();
  over_ones->~Config();
}

// An enum's names are its row's accepted text: each parses and prints as itself.
TEST(ConfigTest, EnumNamesComeFromTheAcceptedText) {
  size_t enums = 0;
  for (const OptionSpec& spec : kOptions) {
    if (spec.type != "enum" || spec.name == "EGM_LOG_LEVEL") continue;
    ++enums;
    std::string accepted(spec.accepted);
    for (size_t at = 0; (at = accepted.find(" or ", at)) != std::string::npos;) {
      accepted.replace(at, 4, ", ");
    }
    size_t names = 0;
    for (std::string_view name : split(accepted, ',')) {
      if (name.front() == ' ') name.remove_prefix(1);
      ++names;
      ParsedConfig parsed = parse({{std::string(spec.name), std::string(name)}});
      EXPECT_TRUE(parsed.errors.empty()) << spec.name << "=" << name;
      Config config = parsed.config;
      EXPECT_EQ(spec.field.print(spec, config), name) << spec.name;
    }
    EXPECT_GE(names, 2u) << spec.name;
  }
  EXPECT_EQ(enums, 6u);
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
        BadValue{"EGM_DEVICES", "2147483647", "above the largest allowed, 1023"},
        BadValue{"EGM_DEVICES", "2147483640-2147483647", "above the largest allowed"},
        BadValue{"EGM_DEVICES", "0-1024", "1024 is above the largest allowed, 1023"},
        BadValue{"EGM_DEVICES", "2147483648"},
        BadValue{"EGM_NUMA_POLICY", "bind:2147483647", "above the largest allowed"},
        BadValue{"EGM_NUMA_POLICY", "interleave:0,2147483647", "above the largest allowed"},
        BadValue{"EGM_NUMA_POLICY", "preferred:2147483647", "does not exist"},
        BadValue{"EGM_NODE_LIMIT", "2147483647:1G", "does not exist"},
        BadValue{"EGM_NODE_LIMIT", "0=64G"},
        BadValue{"EGM_NODE_LIMIT", "0:64G,0:1G", "listed twice"},
        BadValue{"EGM_NODE_LIMIT", "3:1G", "node 3 does not exist"},
        BadValue{"EGM_NODE_LIMIT", "0:65G", "above the node's memory (64G)"},
        BadValue{"EGM_LEDGER", "ledger.bin", "must be absolute"},
        BadValue{"EGM_LEDGER", "", "must be absolute"}, BadValue{"EGM_LEDGER", "OFF"},
        BadValue{"EGM_LEDGER", "/dev/shm/", "not a directory"},
        BadValue{"EGM_FALLBACK", "host"}, BadValue{"EGM_DEVICE_RESERVE", "lots"},
        BadValue{"EGM_DEVICE_RESERVE", "AUTO"}, BadValue{"EGM_SPILL_MIN_SIZE", "half"},
        BadValue{"EGM_SPILL_MIN_SIZE", "-1M"},
        BadValue{"EGM_HOST_ACCESS", "2"}, BadValue{"EGM_GRANULARITY", "maximum"},
        BadValue{"EGM_LOG_LEVEL", "loud"}, BadValue{"EGM_LOG_FILE", "/tmp/x%d", "only %p"},
        BadValue{"EGM_LOG_FILE", "/tmp/x-%R", "%r (rank)"},
        BadValue{"EGM_SNAPSHOT_FILE", "/tmp/%r%"},
        BadValue{"EGM_METRICS_FILE", "/tmp/m%x.prom", "only %p"},
        BadValue{"EGM_METRICS_INTERVAL", ""}, BadValue{"EGM_METRICS_INTERVAL", "5s"},
        BadValue{"EGM_METRICS_INTERVAL", "-1"}, BadValue{"EGM_METRICS_INTERVAL", "0"},
        BadValue{"EGM_METRICS_INTERVAL", "0.05", "between 0.1 and 86400"},
        BadValue{"EGM_METRICS_INTERVAL", "86401", "between 0.1 and 86400"},
        BadValue{"EGM_METRICS_INTERVAL", "1.2345"}, BadValue{"EGM_METRICS_INTERVAL", "1."},
        BadValue{"EGM_METRICS_INTERVAL", ".5"},
        BadValue{"EGM_METRICS_INTERVAL", "99999999999999999999"},
        BadValue{"EGM_STRICT", "2"}, BadValue{"EGM_STAGING", "yes please"},
        BadValue{"EGM_STAGING", ""}, BadValue{"EGM_STAGING_WINDOW", "2X"},
        BadValue{"EGM_STAGING_WINDOW", "-1G"},
        BadValue{"EGM_STAGING_WINDOW", "0", "below the smallest window, 1M"},
        BadValue{"EGM_STAGING_WINDOW", "1023K", "below the smallest window, 1M"}, BadValue{"EGM_CONFIG", "/nonexistent/egm.conf", "cannot open"},
        BadValue{"EGM_CONFIG", "/dev/zero", "not a regular file"},
        BadValue{"EGM_CONFIG", "/dev/null", "not a regular file"},
        BadValue{"EGM_CONFIG", "/", "is a directory"}));

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
                               {"EGM_SPILL_MIN_SIZE", "0"},
                               {"EGM_HOST_ACCESS", "0"},
                               {"EGM_GRANULARITY", "recommended"},
                               {"EGM_LOG_FILE", "/tmp/%h/egm-%r-%p%%.log"},
                               {"EGM_SNAPSHOT_FILE", "/tmp/egm-%h-%r"},
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
  EXPECT_EQ(c.device_reserve, std::optional<size_t>(256u << 20));
  EXPECT_EQ(c.spill_min_size, std::optional<size_t>(0));
  EXPECT_FALSE(c.host_access);
  EXPECT_EQ(c.granularity, Granularity::kRecommended);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.log_file_template, "/tmp/%h/egm-%r-%p%%.log");
  EXPECT_EQ(c.snapshot_template, "/tmp/egm-%h-%r");
  EXPECT_TRUE(c.strict);
  EXPECT_NE(parsed.summary().find("numa_policy=interleave:0-2,5"), std::string::npos);
  EXPECT_NE(parsed.summary().find("device_reserve=268435456 spill_min_size=0"), std::string::npos);
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

TEST(ConfigTest, MetricsIntervalIsSecondsKeptInMilliseconds) {
  EXPECT_EQ(parse({}).config.metrics_interval_ms, 5000u);
  for (auto [text, milliseconds] : {std::pair<const char*, uint64_t>{"0.1", 100}, {"0.5", 500},
                                    {"2", 2000}, {"1.25", 1250}, {"86400", 86'400'000}}) {
    ParsedConfig parsed = parse({{"EGM_METRICS_INTERVAL", text}});
    EXPECT_TRUE(parsed.errors.empty()) << text;
    EXPECT_EQ(parsed.config.metrics_interval_ms, milliseconds) << text;
  }
  EXPECT_EQ(parse({{"EGM_METRICS_FILE", "/run/egm-%p.prom"}}).config.metrics_template,
            "/run/egm-%p.prom");
}

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
  EXPECT_NE(both.find("EGM_CONFIG (egm.conf:3) is not valid: the line is not VARIABLE=value"),
            std::string::npos)
      << both;
  EXPECT_EQ(both.find("junk"), std::string::npos) << "a line of another file must not be echoed";
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

// Ranges are never expanded: huge lists parse in bounded time and memory.
TEST(ConfigTest, HugeListsOfRangesAreNotExpanded) {
  std::string value;
  while (value.size() < 1'000'000) value += "0-1023,";
  value += "5";
  ParsedConfig parsed = parse({{"EGM_DEVICES", value}});
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0].to_string();
  EXPECT_EQ(format_int_list(*parsed.config.devices), "0-1023");
}

TEST(ConfigTest, ErrorLinesAreBoundedAndEscaped) {
  std::string value(200'000, 'x');
  value[3] = '\x1b';
  value[4] = '\n';
  ParsedConfig parsed = parse({{"EGM_MODE", value}});
  ASSERT_EQ(parsed.errors.size(), 1u);
  std::string line = parsed.errors[0].to_string();
  EXPECT_LT(line.size(), 400u) << line;
  EXPECT_NE(line.find("xxx\\x1b\\x0axx"), std::string::npos) << line;
  EXPECT_NE(line.find("...(200000 bytes)"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(ConfigTest, ManyBadLinesGiveABoundedNumberOfErrorsAndACount) {
  std::string file;
  for (int i = 0; i < 100'000; ++i) file += "EGM_MODE=bad\n";
  for (int i = 0; i < 1'000; ++i) file += "EGM_NOT_AN_OPTION=1\n";
  ParsedConfig parsed = parse_config({}, kFourNodes, file, "egm.conf");
  ASSERT_EQ(parsed.errors.size(), 11u);
  EXPECT_EQ(parsed.errors.back().to_string(),
            "EGM_CONFIG: 99990 more configuration errors not shown");
  ASSERT_EQ(parsed.warnings.size(), 11u);
  EXPECT_EQ(parsed.warnings.back(), "990 more warnings not shown");
}

TEST(ConfigTest, FileTakesCommentsBlanksCrlfAndAByteOrderMark) {
  std::string file =
      "\xEF\xBB\xBF"
      "EGM_MODE = spill   # spill when the GPU is full\r\n"
      "EGM_LOG_FILE=/tmp/a#b.log\r\n"
      "\tEGM_MIN_SIZE\t=\t1M\r\n"
      "# EGM_FALLBACK=error\r\n";
  ParsedConfig parsed = parse_config({}, kFourNodes, file, "egm.conf");
  ASSERT_TRUE(parsed.errors.empty()) << parsed.errors[0].to_string();
  ASSERT_TRUE(parsed.warnings.empty()) << parsed.warnings[0];
  EXPECT_EQ(parsed.config.mode, Mode::kSpill);
  EXPECT_EQ(parsed.config.min_size, 1u << 20);
  EXPECT_EQ(parsed.config.log_file_template, "/tmp/a#b.log");
  EXPECT_EQ(parsed.config.fallback, Fallback::kDevice);
}

TEST(ConfigTest, ConfigFileAboveOneMebibyteIsRefused) {
  std::string path = ::testing::TempDir() + "/big.conf";
  {
    FILE* file = std::fopen(path.c_str(), "w");
    ASSERT_NE(file, nullptr);
    for (int i = 0; i < 70'000; ++i) std::fputs("EGM_MODE=spill\n", file);
    std::fclose(file);
  }
  ParsedConfig parsed = parse({{"EGM_CONFIG", path}});
  ASSERT_EQ(parsed.errors.size(), 1u);
  EXPECT_NE(parsed.errors[0].to_string().find("larger than 1 MiB"), std::string::npos);
}

TEST(HostTopologyTest, DescribesNodesAsRanges) {
  EXPECT_EQ(kFourNodes.describe_nodes(), "0-2,5");
  EXPECT_EQ(format_int_list({0, 1, 2, 3, 5, 7, 8}), "0-3,5,7-8");
  EXPECT_EQ(HostTopology{}.describe_nodes(), "none");
}

}  // namespace
}  // namespace egm
