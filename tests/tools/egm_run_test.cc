// Runs the real egm-run: --help, --dry-run, validation errors, and exec.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include "config/options.h"
#include "tests/tools/tool_process.h"

namespace {

using tools_test::contains;
using tools_test::EnvironmentEdits;
using tools_test::lines_of;
using tools_test::ProcessResult;
using tools_test::runfile;

constexpr int kUsageError = 2;
constexpr const char* kJaxAllocatorVariables[] = {"XLA_PYTHON_CLIENT_ALLOCATOR",
                                                  "XLA_PYTHON_CLIENT_PREALLOCATE",
                                                  "XLA_PYTHON_CLIENT_MEM_FRACTION"};

std::string egm_run() { return runfile("tools/run/egm-run"); }
std::string shim() { return tools_test::canonical(runfile("shim/libegm.so")); }
// Passes the shim check (exports cudaMalloc) without being the shim.
std::string other_library() { return runfile("tests/tools/libstand_in_shim.so"); }
std::string not_a_shim() { return runfile("tests/tools/libfake_cuda_leak_report.so"); }

// egm-run with `args`, in an environment without EGM_* or LD_PRELOAD from outside.
ProcessResult egm_run_with(std::vector<std::string> args, EnvironmentEdits edits = {}) {
  args.insert(args.begin(), egm_run());
  edits.emplace("LD_PRELOAD", std::nullopt);
  for (const char* jax : kJaxAllocatorVariables) edits.emplace(jax, std::nullopt);
  for (const egm::OptionSpec& spec : egm::kOptions) {
    edits.emplace(std::string(spec.name), std::nullopt);
  }
  return tools_test::run_process(args, edits);
}

std::string expected_flag(std::string_view variable) {
  std::string flag = "--";
  for (char c : variable.substr(4)) {
    flag += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return flag;
}

// --help wraps the docs; compare with runs of blanks collapsed.
std::string collapse_blanks(const std::string& text) {
  std::string collapsed;
  for (char c : text) {
    bool blank = c == ' ' || c == '\n';
    if (blank && (collapsed.empty() || collapsed.back() == ' ')) continue;
    collapsed += blank ? ' ' : c;
  }
  return collapsed;
}

TEST(EgmRunHelp, ListsEveryOptionOfTheTableAndItsOwnFlags) {
  ProcessResult run = egm_run_with({"--help"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  std::string help = collapse_blanks(run.out);
  for (const egm::OptionSpec& spec : egm::kOptions) {
    SCOPED_TRACE(std::string(spec.name));
    EXPECT_TRUE(contains(help, expected_flag(spec.name) + " ")) << help;
    EXPECT_TRUE(contains(help, "(" + std::string(spec.name) + ")"));
    EXPECT_TRUE(contains(help, "accepted: " + std::string(spec.accepted) + ";"));
    std::string default_value =
        spec.default_value.empty() ? "unset" : std::string(spec.default_value);
    EXPECT_TRUE(contains(help, "default: " + default_value));
    EXPECT_TRUE(contains(help, std::string(spec.doc)));
  }
  for (const char* own : {"--dry-run", "--lib PATH", "--help"}) EXPECT_TRUE(contains(help, own));
  EXPECT_TRUE(contains(help, "--numa-policy POLICY (EGM_NUMA_POLICY)"));
  EXPECT_TRUE(contains(help, "--strict [0|1] (EGM_STRICT)"));
}

TEST(EgmRunDryRun, PrintsSortedEnvironmentChangesAndTheCommand) {
  ProcessResult run =
      egm_run_with({"--dry-run", "--numa-policy", "bind:0", "--log-file=/tmp/egm-%p.log",
                    "--strict", "--min-size", "4M", "--", "/usr/bin/env", "A", "b c"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  std::vector<std::string> expected = {
      "EGM_LOG_FILE=/tmp/egm-%p.log", "EGM_MIN_SIZE=4M",
      "EGM_NUMA_POLICY=bind:0",       "EGM_STRICT=1",
      "LD_PRELOAD=" + shim(),         "command: /usr/bin/env A 'b c'"};
  EXPECT_EQ(lines_of(run.out), expected);
  EXPECT_EQ(run.err, "");
}

TEST(EgmRunDryRun, BooleanFlagsTakeAValueToo) {
  ProcessResult run =
      egm_run_with({"--dry-run", "--strict", "0", "--host-access=0", "--enable", "--", "prog"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(contains(run.out, "EGM_STRICT=0\n"));
  EXPECT_TRUE(contains(run.out, "EGM_HOST_ACCESS=0\n"));
  EXPECT_TRUE(contains(run.out, "EGM_ENABLE=1\n"));
}

TEST(EgmRunDryRun, KeepsWhatWasPreloadedAfterTheShim) {
  EnvironmentEdits edits = {{"LD_PRELOAD", "/opt/a.so /opt/b.so"}};
  std::vector<std::string> args = {egm_run(), "--dry-run", "--", "prog"};
  ProcessResult run = tools_test::run_process(args, edits);
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(contains(run.out, "LD_PRELOAD=" + shim() + ":/opt/a.so:/opt/b.so\n")) << run.out;
}

TEST(EgmRunDryRun, LibOverridesTheShimPath) {
  std::string copy = tools_test::temp_dir() + "/copy-of-libegm.so";
  std::ofstream(copy, std::ios::binary) << tools_test::read_whole_file(shim());
  ProcessResult run = egm_run_with({"--dry-run", "--lib", copy, "--", "prog"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(contains(run.out, "LD_PRELOAD=" + tools_test::canonical(copy) + "\n")) << run.out;
}

class EgmRunNotAShim : public testing::TestWithParam<std::string> {};

// The program would run unredirected: egm-run refuses before exec.
TEST_P(EgmRunNotAShim, LibIsRefusedWithStatus2) {
  std::string library = GetParam() == "OTHER" ? not_a_shim() : GetParam();
  ProcessResult run = egm_run_with({"--lib", library, "--", "/bin/echo", "ran"});
  EXPECT_EQ(run.exit_status, kUsageError) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_TRUE(contains(run.err, "cannot be the shim")) << run.err;
  EXPECT_EQ(lines_of(run.err).size(), 1u) << run.err;
}

INSTANTIATE_TEST_SUITE_P(Files, EgmRunNotAShim,
                         testing::Values("/etc/passwd", "/dev/zero", "/bin/true", "OTHER"));

struct BadValue {
  std::vector<std::string> flags;
  std::string variable;
  std::string value;
};

class EgmRunBadValue : public testing::TestWithParam<BadValue> {};

TEST_P(EgmRunBadValue, ExitsWithStatus2NamingVariableValueAndAcceptedForm) {
  std::vector<std::string> args = GetParam().flags;
  for (const char* tail : {"--", "/usr/bin/true"}) args.push_back(tail);
  ProcessResult run = egm_run_with(args);
  EXPECT_EQ(run.exit_status, kUsageError);
  const egm::OptionSpec* spec = egm::find_option(GetParam().variable);
  ASSERT_NE(spec, nullptr);
  EXPECT_TRUE(
      contains(run.err, "egm-run: " + GetParam().variable + "=\"" + GetParam().value + "\""))
      << run.err;
  EXPECT_TRUE(contains(run.err, std::string(spec->accepted))) << run.err;
  EXPECT_EQ(run.out, "");
}

INSTANTIATE_TEST_SUITE_P(
    Values, EgmRunBadValue,
    testing::Values(BadValue{{"--mode", "sometimes"}, "EGM_MODE", "sometimes"},
                    BadValue{{"--numa-policy", "bind:99"}, "EGM_NUMA_POLICY", "bind:99"},
                    BadValue{{"--min-size", "1.5G"}, "EGM_MIN_SIZE", "1.5G"},
                    BadValue{{"--strict=maybe"}, "EGM_STRICT", "maybe"},
                    // These looped without end in the range expansion.
                    BadValue{{"--dry-run", "--devices", "2147483647"}, "EGM_DEVICES", "2147483647"},
                    BadValue{{"--numa-policy", "interleave:2147483640-2147483647"},
                             "EGM_NUMA_POLICY",
                             "interleave:2147483640-2147483647"}));

TEST(EgmRunErrors, BadValueAlreadyInTheEnvironmentIsAnErrorToo) {
  ProcessResult run = egm_run_with({"--dry-run", "--", "prog"}, {{"EGM_FALLBACK", "nowhere"}});
  EXPECT_EQ(run.exit_status, kUsageError);
  EXPECT_TRUE(contains(run.err, "egm-run: EGM_FALLBACK=\"nowhere\"")) << run.err;
}

TEST(EgmRunErrors, EveryErrorIsReported) {
  ProcessResult run = egm_run_with({"--mode", "x", "--fallback", "y", "--", "prog"});
  EXPECT_EQ(run.exit_status, kUsageError);
  EXPECT_TRUE(contains(run.err, "EGM_MODE=\"x\"")) << run.err;
  EXPECT_TRUE(contains(run.err, "EGM_FALLBACK=\"y\"")) << run.err;
}

struct BadCommandLine {
  std::vector<std::string> args;
  std::string message;
};

class EgmRunBadCommandLine : public testing::TestWithParam<BadCommandLine> {};

TEST_P(EgmRunBadCommandLine, ExitsWithStatus2AndSaysWhy) {
  ProcessResult run = egm_run_with(GetParam().args);
  EXPECT_EQ(run.exit_status, kUsageError);
  EXPECT_TRUE(contains(run.err, "egm-run: " + GetParam().message)) << run.err;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EgmRunBadCommandLine,
    testing::Values(BadCommandLine{{"--bogus", "--", "prog"}, "unknown flag --bogus"},
                    BadCommandLine{{"--numa_policy=bind:0", "--", "prog"},
                                   "unknown flag --numa_policy"},
                    BadCommandLine{{"--mode", "spill", "prog"}, "unexpected argument 'prog'"},
                    BadCommandLine{{"--mode", "spill"}, "missing `--` before the program"},
                    BadCommandLine{{"--mode", "spill", "--"}, "no program after `--`"},
                    BadCommandLine{{"--mode", "--", "prog"}, "--mode needs a value"},
                    BadCommandLine{{"--dry-run=1", "--", "prog"}, "--dry-run takes no value"},
                    BadCommandLine{{}, "missing `--` before the program"},
                    BadCommandLine{{"--lib", "/no/such/libegm.so", "--", "prog"},
                                   "--lib /no/such/libegm.so: no such readable file"}));

bool has_line(const std::string& text, const std::string& line) {
  std::vector<std::string> lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// The exec path with another library than the shim, so that it does not
// depend on what libegm.so does in the program.
TEST(EgmRunExec, RunsTheProgramWithTheLibraryPreloadedAndTheVariablesSet) {
  ProcessResult run =
      egm_run_with({"--lib", other_library(), "--mode", "spill", "--strict", "--", "/usr/bin/env"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(has_line(run.out, "LD_PRELOAD=" + tools_test::canonical(other_library()))) << run.out;
  EXPECT_TRUE(has_line(run.out, "EGM_MODE=spill")) << run.out;
  EXPECT_TRUE(has_line(run.out, "EGM_STRICT=1")) << run.out;
}

TEST(EgmRunExec, ArgumentsAndExitStatusPassThrough) {
  ProcessResult run = egm_run_with(
      {"--lib", other_library(), "--", "/bin/sh", "-c", "echo \"$1\"; exit 7", "sh", "a b"});
  EXPECT_EQ(run.exit_status, 7) << run.err;
  EXPECT_EQ(run.out, "a b\n");
}

TEST(EgmRunExec, SearchesPathLikeAShell) {
  ProcessResult run =
      egm_run_with({"--lib", other_library(), "--", "true"}, {{"PATH", "/usr/bin:/bin"}});
  EXPECT_EQ(run.exit_status, 0) << run.err;
}

TEST(EgmRunExec, ProgramThatCannotRunGives127) {
  ProcessResult run = egm_run_with({"--", "/no/such/program"});
  EXPECT_EQ(run.exit_status, 127);
  EXPECT_TRUE(contains(run.err, "egm-run: cannot run '/no/such/program'")) << run.err;
}

// The real shim needs no GPU to load: the program runs unchanged under it.
TEST(EgmRunExec, RunsTheProgramUnderTheRealShim) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer-built libegm.so cannot be preloaded into an uninstrumented "
                  "/usr/bin/env (its runtime must load first); covered by the plain build";
#endif
  ProcessResult run = egm_run_with({"--mode", "spill", "--min-size=1M", "--", "/usr/bin/env"});
  ASSERT_EQ(run.exit_status, 0) << "libegm.so broke /usr/bin/env: " << run.err;
  EXPECT_TRUE(has_line(run.out, "LD_PRELOAD=" + shim())) << run.out;
  EXPECT_TRUE(has_line(run.out, "EGM_MODE=spill")) << run.out;
  EXPECT_TRUE(has_line(run.out, "EGM_MIN_SIZE=1M")) << run.out;
}

// Spill mode sets JAX's allocator to one that asks CUDA for every buffer.
TEST(EgmRunFrameworks, SpillModeSetsJaxsPlatformAllocatorAndSaysWhy) {
  ProcessResult run = egm_run_with({"--dry-run", "--mode", "spill", "--", "prog"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(has_line(run.out, "XLA_PYTHON_CLIENT_ALLOCATOR=platform")) << run.out;
  EXPECT_TRUE(contains(run.out, "\n# XLA_PYTHON_CLIENT_ALLOCATOR=platform: spill mode")) << run.out;
  EXPECT_EQ(lines_of(run.out).back(), "command: prog");
}

TEST(EgmRunFrameworks, HelpSaysWhatSpillModeSetsForJax) {
  ProcessResult run = egm_run_with({"--help"});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(contains(collapse_blanks(run.out),
                       "In spill mode it also sets XLA_PYTHON_CLIENT_ALLOCATOR=platform"))
      << run.out;
}

TEST(EgmRunFrameworks, SpillModeFromTheEnvironmentCountsToo) {
  ProcessResult run = egm_run_with({"--dry-run", "--", "prog"}, {{"EGM_MODE", "spill"}});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(has_line(run.out, "XLA_PYTHON_CLIENT_ALLOCATOR=platform")) << run.out;
}

TEST(EgmRunFrameworks, SpillModeFromAConfigFileCountsToo) {
  std::string config = tools_test::temp_dir() + "/spill.conf";
  std::ofstream(config) << "EGM_MODE=spill\n";
  ProcessResult run = egm_run_with({"--dry-run", "--", "prog"}, {{"EGM_CONFIG", config}});
  ASSERT_EQ(run.exit_status, 0) << run.err;
  EXPECT_TRUE(has_line(run.out, "XLA_PYTHON_CLIENT_ALLOCATOR=platform")) << run.out;
}

TEST(EgmRunFrameworks, NothingOutsideSpillModeOrWhenDisabled) {
  for (std::vector<std::string> flags : {std::vector<std::string>{},
                                         {"--mode", "always"},
                                         {"--mode", "off"},
                                         {"--mode", "spill", "--enable", "0"}}) {
    std::vector<std::string> args = {"--dry-run"};
    args.insert(args.end(), flags.begin(), flags.end());
    args.insert(args.end(), {"--", "prog"});
    ProcessResult run = egm_run_with(args);
    ASSERT_EQ(run.exit_status, 0) << run.err;
    EXPECT_FALSE(contains(run.out, "XLA_")) << run.out;
  }
}

// A user who chose any of JAX's allocator settings keeps all of them.
TEST(EgmRunFrameworks, JaxAllocatorVariablesTheUserSetAreKept) {
  for (const char* name : kJaxAllocatorVariables) {
    ProcessResult run =
        egm_run_with({"--dry-run", "--mode", "spill", "--", "prog"}, {{name, "my value"}});
    ASSERT_EQ(run.exit_status, 0) << run.err;
    EXPECT_FALSE(has_line(run.out, "XLA_PYTHON_CLIENT_ALLOCATOR=platform")) << run.out;
    EXPECT_TRUE(has_line(run.out, std::string("# kept ") + name +
                                      "='my value' from the environment: egm-run sets "
                                      "XLA_PYTHON_CLIENT_ALLOCATOR=platform only when no JAX "
                                      "allocator variable is set"))
        << run.out;
  }
}

TEST(EgmRunFrameworks, TheProgramSeesTheVariableAndKeepsTheUsersValue) {
  ProcessResult set =
      egm_run_with({"--lib", other_library(), "--mode", "spill", "--", "/usr/bin/env"});
  ASSERT_EQ(set.exit_status, 0) << set.err;
  EXPECT_TRUE(has_line(set.out, "XLA_PYTHON_CLIENT_ALLOCATOR=platform")) << set.out;
  ProcessResult kept =
      egm_run_with({"--lib", other_library(), "--mode", "spill", "--", "/usr/bin/env"},
                   {{"XLA_PYTHON_CLIENT_ALLOCATOR", "bfc"}});
  ASSERT_EQ(kept.exit_status, 0) << kept.err;
  EXPECT_TRUE(has_line(kept.out, "XLA_PYTHON_CLIENT_ALLOCATOR=bfc")) << kept.out;
  EXPECT_FALSE(contains(kept.out, "=platform")) << kept.out;
}

}  // namespace
