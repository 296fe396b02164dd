// Unit tests of egm-run's command-line parsing and environment building.
#include "tools/run/run_options.h"

#include <gtest/gtest.h>

#include "tools/run/framework_settings.h"
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

std::optional<std::string> nothing_set(const std::string&) { return std::nullopt; }

TEST(FrameworkSettings, SpillSetsJaxsPlatformAllocatorWithANote) {
  FrameworkSettings settings = framework_settings(true, nothing_set);
  EXPECT_EQ(settings.changes, (EnvironmentChanges{{"XLA_PYTHON_CLIENT_ALLOCATOR", "platform"}}));
  ASSERT_EQ(settings.notes.size(), 1u);
  EXPECT_EQ(settings.notes[0].rfind("# XLA_PYTHON_CLIENT_ALLOCATOR=platform: spill mode", 0), 0u);
}

TEST(FrameworkSettings, NothingOutsideSpill) {
  FrameworkSettings settings = framework_settings(false, nothing_set);
  EXPECT_TRUE(settings.changes.empty());
  EXPECT_TRUE(settings.notes.empty());
}

TEST(FrameworkSettings, AnyJaxAllocatorVariableSetKeepsThemAllEvenEmpty) {
  FrameworkSettings settings =
      framework_settings(true, [](const std::string& name) -> std::optional<std::string> {
        if (name == "XLA_PYTHON_CLIENT_MEM_FRACTION") return ".5";
        if (name == "XLA_PYTHON_CLIENT_PREALLOCATE") return "";
        return std::nullopt;
      });
  EXPECT_TRUE(settings.changes.empty());
  ASSERT_EQ(settings.notes.size(), 2u);
  EXPECT_EQ(settings.notes[0].rfind("# kept XLA_PYTHON_CLIENT_PREALLOCATE='' from", 0), 0u);
  EXPECT_EQ(settings.notes[1].rfind("# kept XLA_PYTHON_CLIENT_MEM_FRACTION=.5 from", 0), 0u);
}

TEST(DryRunText, NotesComeBeforeTheCommand) {
  EXPECT_EQ(dry_run_text({{"A", "1"}}, {"prog"}, {"# why"}), "A=1\n# why\ncommand: prog\n");
}

}  // namespace
}  // namespace egm::run
