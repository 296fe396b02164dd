#include "shim/core/log.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

namespace egm {
namespace {

TEST(LogTest, LogfmtValuesAreBareOnlyWhenSafe) {
  EXPECT_EQ(logfmt_value("CUDA_ERROR_INVALID_VALUE"), "CUDA_ERROR_INVALID_VALUE");
  EXPECT_EQ(logfmt_value("two words"), "\"two words\"");
  EXPECT_EQ(logfmt_value("a=b"), "\"a=b\"");
  EXPECT_EQ(logfmt_value("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
  EXPECT_EQ(logfmt_value(""), "\"\"");
  EXPECT_EQ(logfmt_value("line\nbreak"), "\"line\\nbreak\"");
}

TEST(LogTest, PathTemplateSubstitutesThePid) {
  EXPECT_EQ(expand_path_template("/tmp/egm-%p.log", 42), "/tmp/egm-42.log");
  EXPECT_EQ(expand_path_template("/tmp/100%%-%p-%p", 7), "/tmp/100%-7-7");
  EXPECT_EQ(expand_path_template("/tmp/plain.log", 7), "/tmp/plain.log");
}

}  // namespace
}  // namespace egm

namespace egm {
namespace {

// A fake environment for rank_from.
EnvironmentLookup environment(std::map<std::string, std::string> values) {
  auto table = std::make_shared<std::map<std::string, std::string>>(std::move(values));
  return [table](const char* name) -> const char* {
    auto found = table->find(name);
    return found == table->end() ? nullptr : found->second.c_str();
  };
}

TEST(LogIdentityTest, RankComesFromTheFirstVariableSetInTheDocumentedOrder) {
  std::map<std::string, std::string> all = {
      {"RANK", "1"}, {"SLURM_PROCID", "2"}, {"OMPI_COMM_WORLD_RANK", "3"}, {"PMI_RANK", "4"}};
  EXPECT_EQ(rank_from(environment(all)), "1");
  all.erase("RANK");
  EXPECT_EQ(rank_from(environment(all)), "2");
  all.erase("SLURM_PROCID");
  EXPECT_EQ(rank_from(environment(all)), "3");
  all.erase("OMPI_COMM_WORLD_RANK");
  EXPECT_EQ(rank_from(environment(all)), "4");
  all.erase("PMI_RANK");
  EXPECT_EQ(rank_from(environment(all)), "norank");
  // Empty counts as unset; leading zeros are dropped.
  EXPECT_EQ(rank_from(environment({{"RANK", ""}, {"PMI_RANK", "0007"}})), "7");
  EXPECT_EQ(rank_from(environment({{"RANK", "000"}})), "0");
  EXPECT_EQ(rank_from(environment({{"RANK", "123456789"}})), "123456789");
}

TEST(LogIdentityTest, HostileRankValuesBecomeNoRank) {
  for (std::string bad : {"../x", "..", "/", "1/2", "-1", "+1", " 1", "1 ", "1\n", "0x1", "1e3",
                          "1234567890", "\x1b[31m", "\xef\xbc\x91", "1%p"}) {
    // A bad first variable is not replaced by a later one: the first set decides.
    EXPECT_EQ(rank_from(environment({{"RANK", bad}, {"SLURM_PROCID", "5"}})), "norank")
        << "RANK=" << bad;
  }
}

TEST(LogIdentityTest, HostNamesAreOneSafePathComponent) {
  EXPECT_EQ(clean_host_name("gpu-node01.cluster"), "gpu-node01.cluster");
  EXPECT_EQ(clean_host_name(""), "nohost");
  EXPECT_EQ(clean_host_name("."), "_");
  EXPECT_EQ(clean_host_name(".."), "_.");
  EXPECT_EQ(clean_host_name("../etc"), "_._etc");
  EXPECT_EQ(clean_host_name("a/b"), "a_b");
  EXPECT_EQ(clean_host_name("a\nb\x1b"), "a_b_");
  EXPECT_EQ(clean_host_name(std::string(300, 'h')), std::string(64, 'h'));
  std::string host = host_of_this_process();
  EXPECT_FALSE(host.empty());
  EXPECT_EQ(host.find('/'), std::string::npos);
  EXPECT_EQ(clean_host_name(host), host);
}

TEST(LogIdentityTest, PathTemplateSubstitutesRankAndHost) {
  PathFields fields{42, "3", "gpu01"};
  EXPECT_EQ(expand_path_template("/logs/%h/egm-%r-%p.log", fields), "/logs/gpu01/egm-3-42.log");
  EXPECT_EQ(expand_path_template("/logs/%%r-%r%%", fields), "/logs/%r-3%");
  EXPECT_EQ(expand_path_template("/logs/egm-%r.log", PathFields{1, "norank", "nohost"}),
            "/logs/egm-norank.log");
  // Unknown sequences stay as they are (the options table refuses them).
  EXPECT_EQ(expand_path_template("/logs/%x%", fields), "/logs/%x%");
  // The old overload uses this process's rank and host.
  EXPECT_EQ(expand_path_template("%h", 1), host_of_this_process());
  EXPECT_EQ(expand_path_template("%r", 1), rank_of_this_process());
}

}  // namespace
}  // namespace egm
