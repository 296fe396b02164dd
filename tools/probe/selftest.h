// egm-probe --selftest: runs the compatibility program (egm-compat-checks)
// on this machine's CUDA twice, without and with libegm.so preloaded
// (EGM_MODE=always), and compares each check's result between the runs.
#pragma once

#include <string>
#include <vector>

namespace egm::probe {

struct SelftestOptions {
  std::string program;        // egm-compat-checks
  std::string shim;           // libegm.so
  int timeout_seconds = 120;  // per run
};

// How one check came out. PASS: same result; SKIP: both runs skipped it;
// KNOWN: a documented difference that does not fail the self-test; FAIL:
// anything else.
struct CheckOutcome {
  std::string verdict;
  std::string name;
  std::string without;
  std::string with;
};

// One check's line of the program's output: "check <name> <result>".
struct CheckLine {
  std::string name;
  std::string result;
};

std::vector<CheckLine> parse_check_lines(const std::string& output);

// Pairs the two runs' checks by name, in the order of the first run.
std::vector<CheckOutcome> compare_runs(const std::vector<CheckLine>& without,
                                       const std::vector<CheckLine>& with,
                                       const std::string& without_status,
                                       const std::string& with_status);

// Directory of the running executable (where egm-probe finds its companions).
std::string executable_directory();

// Runs the self-test, prints one line per check and a summary; returns the
// exit status: 0 when no check FAILs, 1 otherwise (or when a run could not start).
int run_selftest(const SelftestOptions& options);

}  // namespace egm::probe
