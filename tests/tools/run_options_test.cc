// Unit tests of egm-run's command-line parsing and environment building.
#include "tools/run/run_options.h"

#include <gtest/gtest.h>

#include "tools/run/launcher.h"

namespace egm::run {
namespace {

ParsedCommandLine parse(std::vector<std::string> args) { return parse_command_line(args); }

TEST(FlagOf, IsTheVariableInLowerCaseWithDashes) {
  EXPECT_EQ(flag_of("EGM_NUMA_POLICY"), "--numa-policy");
  EXPECT_EQ(flag_of("EGM_LOG_FILE"), "--log-file");
  ASSERT_NE(option_of_flag("--device-reserve"), nullptr);
  EXPECT_EQ(option_of_flag("--device-reserve")->name, "EGM_DEVICE_RESERVE");
  EXPECT_EQ(option_of_flag("--device_reserve"), nullptr);
}

TEST(ParseCommandLine, EveryOptionOfTheTableHasAFlag) {
  for (const OptionSpec& spec : kOptions) {
    ParsedCommandLine parsed = parse({flag_of(spec.name) + "=v", "--", "prog"});
    ASSERT_EQ(parsed.error, "") << spec.name;
    EXPECT_EQ(parsed.request.settings.at(std::string(spec.name)), "v");
  }
}

TEST(ParseCommandLine, SeparateAndInlineValuesAndTheProgram) {
  ParsedCommandLine parsed =
      parse({"--mode", "spill", "--log-file=/tmp/a=b", "--dry-run", "--", "prog", "--mode", "x"});
  ASSERT_EQ(parsed.error, "");
  EXPECT_EQ(parsed.request.settings.at("EGM_MODE"), "spill");
  EXPECT_EQ(parsed.request.settings.at("EGM_LOG_FILE"), "/tmp/a=b");
  EXPECT_TRUE(parsed.request.dry_run);
  EXPECT_EQ(parsed.request.program, (std::vector<std::string>{"prog", "--mode", "x"}));
}

TEST(ParseCommandLine, LastValueWins) {
  ParsedCommandLine parsed = parse({"--mode", "spill", "--mode=off", "--", "prog"});
  EXPECT_EQ(parsed.request.settings.at("EGM_MODE"), "off");
}

TEST(ParseCommandLine, EmptyInlineValueIsKept) {
  ParsedCommandLine parsed = parse({"--max-size=", "--", "prog"});
  ASSERT_EQ(parsed.error, "");
  EXPECT_EQ(parsed.request.settings.at("EGM_MAX_SIZE"), "");
}

TEST(ParseCommandLine, HelpNeedsNoProgram) {
  EXPECT_TRUE(parse({"--help"}).request.help);
  EXPECT_TRUE(parse({"-h", "--mode", "x"}).request.help);
}

TEST(ParseCommandLine, LibTakesAPath) {
  EXPECT_EQ(parse({"--lib", "/x.so", "--", "p"}).request.library, "/x.so");
  EXPECT_EQ(parse({"--lib=/y.so", "--", "p"}).request.library, "/y.so");
  EXPECT_NE(parse({"--lib", "--", "p"}).error, "");
}

TEST(PreloadValue, PutsTheShimFirstOnce) {
  EXPECT_EQ(preload_value("/s.so", ""), "/s.so");
  EXPECT_EQ(preload_value("/s.so", "/a.so /b.so"), "/s.so:/a.so:/b.so");
  EXPECT_EQ(preload_value("/s.so", "/a.so:/s.so"), "/s.so:/a.so");
}

TEST(LibraryCandidates, BesideLibAndTheBazelTree) {
  EXPECT_EQ(library_candidates("/o/bin"),
            (std::vector<std::string>{"/o/bin/libegm.so", "/o/bin/../lib/libegm.so",
                                      "/o/bin/../../shim/libegm.so"}));
}

TEST(ShellQuoted, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(shell_quoted("/usr/bin/env"), "/usr/bin/env");
  EXPECT_EQ(shell_quoted("bind:0,1"), "bind:0,1");
  EXPECT_EQ(shell_quoted("a b"), "'a b'");
  EXPECT_EQ(shell_quoted("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quoted(""), "''");
}

TEST(DryRunText, OneLinePerChangeThenTheCommand) {
  EXPECT_EQ(dry_run_text({{"EGM_MODE", "spill"}, {"LD_PRELOAD", "/s.so"}}, {"prog", "a b"}),
            "EGM_MODE=spill\nLD_PRELOAD=/s.so\ncommand: prog 'a b'\n");
}

}  // namespace
}  // namespace egm::run
