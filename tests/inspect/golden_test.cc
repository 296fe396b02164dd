// Golden-file tests: runs egm-inspect on the handwritten logs in testdata/ and
// compares stdout, stderr, the exit status and (where asked) the SVG with the
// expected files testdata/<case>.out, <case>.err and <case>.svg. A missing
// .out or .err file means that stream must be empty.
//
// After an intended change to the output, regenerate the expected files with
//   UPDATE_GOLDEN=1 bazel run //tests/inspect:golden_test
// (`bazel run`, not `bazel test`: it sets BUILD_WORKSPACE_DIRECTORY, the
// source tree the files are written into), then review `git diff`.

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr const char* kTestdata = "tests/inspect/testdata/";

struct GoldenCase {
  std::string name;
  std::vector<std::string> args;  // log paths relative to the workspace root
  int exit_status = 0;
  bool svg = false;
};

// gtest names a failing case by this, not by the struct's bytes.
void PrintTo(const GoldenCase& golden, std::ostream* out) { *out << golden.name; }

std::string log(const std::string& file) { return kTestdata + file; }

std::vector<GoldenCase> golden_cases() {
  return {
      {"normal", {log("normal.log")}, 0, true},
      {"normal_json", {"--json", log("normal.log")}},
      {"normal_at", {"--at", "5s", "--top", "2", log("normal.log")}},
      {"leaks", {log("leaks.log")}},
      {"leaks_json", {"--json", log("leaks.log")}},
      {"killed", {log("killed.log")}},
      {"killed_json", {"--json", log("killed.log")}},
      {"two_processes",
       {"--at", "2024-05-01T13:00:03.500000Z", log("proc_a.log"), log("proc_b.log")},
       0,
       true},
      // Reversed file order: the merge by timestamp must not care.
      {"two_processes_json", {"--json", log("proc_b.log"), log("proc_a.log")}},
      {"shared_file", {"--top", "0", log("shared.log")}},
      // A real log of the shim with its pool: chunk events and blocks.
      {"pooled", {log("pooled.log")}},
      {"pooled_json", {"--json", log("pooled.log")}},
      // A real spill-mode log (api_program on the doubles: a 64 MiB device keeping 16 MiB):
      // three 20 MiB requests (the third spills for size), five of 5 MiB (three inside the
      // reserve, the last one spilled when the device ran out).
      {"spill", {log("spill.log")}, 0, true},
      {"spill_json", {"--json", log("spill.log")}},
      // Three ranks on two hosts (EGM_LOG_FILE=egm-%r-%h.log): rank 2 on gpu-b reuses
      // pid 100 and address 0x7f4000000000 of rank 0 on gpu-a, and was killed.
      // A quoted pattern: egm-inspect expands it.
      {"ranks", {log("ranks/egm-*.log")}},
      {"ranks_at",
       {"--at", "1.2s", "--top", "0", log("ranks/egm-2-gpu-b.log"), log("ranks/egm-1-gpu-a.log"),
        log("ranks/egm-0-gpu-a.log")}},
      {"ranks_json", {"--json", log("ranks/egm-*-gpu-?.log")}},
      {"no_match", {log("ranks/egm-*-gpu-z.log")}, 1},
      {"help", {"--help"}},
      // --prometheus: per process, from chunk, map, fallback, decision and summary lines.
      {"pooled_prometheus", {"--prometheus", log("pooled.log")}},
      {"spill_prometheus", {"--prometheus", log("spill.log")}},
      {"two_processes_prometheus", {"--prometheus", log("proc_a.log"), log("proc_b.log")}},
      {"prometheus_json", {"--prometheus", "--json", log("normal.log")}, 2},
      {"no_logs", {}, 2},
      {"bad_top", {"--top", "-1", log("normal.log")}, 2},
      {"bad_at", {"--at", "yesterday", log("normal.log")}, 2},
      {"unknown_flag", {"--verbose", log("normal.log")}, 2},
      {"missing_file", {log("no-such.log")}, 1},
  };
}

// The runfiles tree: TEST_SRCDIR under `bazel test`; next to the binary
// under `bazel run`.
fs::path runfiles_root() {
  if (const char* dir = std::getenv("TEST_SRCDIR")) return fs::path(dir) / "egm_shim";
  if (const char* dir = std::getenv("RUNFILES_DIR")) return fs::path(dir) / "egm_shim";
  return fs::path(fs::read_symlink("/proc/self/exe").string() + ".runfiles") / "egm_shim";
}

fs::path scratch_dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  fs::path path = fs::path(dir ? dir : fs::temp_directory_path()) / "egm_inspect_golden";
  fs::create_directories(path);
  return path;
}

bool updating_goldens() {
  const char* update = std::getenv("UPDATE_GOLDEN");
  return update != nullptr && std::string(update) == "1";
}

std::string read_file(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

// Single quotes for sh; none of our arguments contain one.
std::string shell_quote(const std::string& text) { return "'" + text + "'"; }

struct RunResult {
  int exit_status = -1;
  std::string out;
  std::string err;
  std::string svg;
};

RunResult run_inspect(const GoldenCase& golden) {
  fs::path root = runfiles_root();
  fs::path scratch = scratch_dir();
  fs::path out = scratch / (golden.name + ".out");
  fs::path err = scratch / (golden.name + ".err");
  fs::path svg = scratch / (golden.name + ".svg");
  // Run from the workspace root so that file names in the output are the
  // relative ones given, the same on every machine.
  std::string command = "cd " + shell_quote(root.string()) + " && " +
                        shell_quote((root / "tools/inspect/egm-inspect").string());
  for (const std::string& arg : golden.args) command += " " + shell_quote(arg);
  if (golden.svg) command += " --svg " + shell_quote(svg.string());
  command += " >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string());
  int status = std::system(command.c_str());
  RunResult result;
  result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out);
  result.err = read_file(err);
  if (golden.svg) result.svg = read_file(svg);
  return result;
}

// Writes `content` as the expected file, or removes it when empty (an
// absent file stands for empty output).
void write_golden(const fs::path& path, const std::string& content) {
  if (content.empty()) {
    fs::remove(path);
    return;
  }
  std::ofstream(path, std::ios::binary) << content;
}

void update_goldens(const GoldenCase& golden, const RunResult& result) {
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  ASSERT_NE(workspace, nullptr) << "UPDATE_GOLDEN=1 needs `bazel run //tests/inspect:golden_test`";
  fs::path base = fs::path(workspace) / kTestdata / golden.name;
  write_golden(base.string() + ".out", result.out);
  write_golden(base.string() + ".err", result.err);
  if (golden.svg) write_golden(base.string() + ".svg", result.svg);
}

std::string expected(const GoldenCase& golden, const std::string& extension) {
  fs::path path = runfiles_root() / kTestdata / (golden.name + extension);
  return fs::exists(path) ? read_file(path) : std::string();
}

class GoldenTest : public testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenTest, OutputMatchesExpectedFiles) {
  const GoldenCase& golden = GetParam();
  RunResult result = run_inspect(golden);
  EXPECT_EQ(result.exit_status, golden.exit_status) << result.err;
  if (updating_goldens()) return update_goldens(golden, result);
  EXPECT_EQ(result.out, expected(golden, ".out")) << "stdout differs; see the comment at the top";
  EXPECT_EQ(result.err, expected(golden, ".err")) << "stderr differs";
  if (golden.svg) {
    EXPECT_EQ(result.svg, expected(golden, ".svg")) << "SVG differs";
  }
}

INSTANTIATE_TEST_SUITE_P(Logs, GoldenTest, testing::ValuesIn(golden_cases()),
                         [](const testing::TestParamInfo<GoldenCase>& info) {
                           return info.param.name;
                         });

}  // namespace
