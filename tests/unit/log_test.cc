#include "shim/core/log.h"

#include <gtest/gtest.h>

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
