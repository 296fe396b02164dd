// The README's options table must be the one generated from config/options.h,
// and its example log line must show the version of config/version.h.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "config/options_doc.h"
#include "config/version.h"

namespace egm {
namespace {

std::string read_readme() {
  const char* root = std::getenv("TEST_SRCDIR");
  std::ifstream file(std::string(root ? root : ".") + "/egm_shim/README.md");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(ReadmeOptionsTest, TableMatchesTheOptionsTable) {
  const std::string readme = read_readme();
  const std::string begin = "<!-- options:begin (generated: egm-options --markdown) -->\n";
  const std::string end = "<!-- options:end -->";
  size_t start = readme.find(begin);
  size_t stop = readme.find(end);
  ASSERT_NE(start, std::string::npos) << "README.md lacks the options markers";
  ASSERT_NE(stop, std::string::npos);
  std::string table = readme.substr(start + begin.size(), stop - start - begin.size());
  EXPECT_EQ(table, options_markdown_table())
      << "regenerate with: config/update_readme_options.sh";
}

TEST(ReadmeOptionsTest, ExampleStartLineShowsTheVersion) {
  const std::string readme = read_readme();
  size_t start = readme.find("event=start version=");
  ASSERT_NE(start, std::string::npos) << "README.md lacks its example start line";
  std::string shown = readme.substr(start + 20, readme.find(' ', start + 20) - start - 20);
  EXPECT_EQ(shown, kVersion) << "README.md's example start line shows another version";
}

}  // namespace
}  // namespace egm
