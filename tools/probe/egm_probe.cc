// egm-probe: does EGM placement (CUDA VMM on host NUMA memory) work on this
// machine? Prints the driver, GPUs and NUMA nodes, then runs the EGM sequence
// live on every GPU x node. Exit status 0: it works on at least one pair;
// 1: it does not (or no driver / GPU); 2: bad flags.
// --selftest instead compares a compatibility program's results without and
// with libegm.so (selftest.h): 0 when they match, 1 when not.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "config/values.h"
#include "tools/probe/probe_report.h"
#include "tools/probe/report_output.h"
#include "tools/probe/selftest.h"

namespace {

constexpr int kWorks = 0;
constexpr int kDoesNotWork = 1;
constexpr int kUsageError = 2;
constexpr size_t kDefaultSize = size_t{2} << 20;

struct Flags {
  bool json = false;
  std::string size = "2M";
  bool selftest = false;
  std::string shim;              // default: libegm.so beside egm-probe
  std::string selftest_program;  // default: egm-compat-checks beside egm-probe
  int selftest_timeout = 120;
};

// Parses argv; nullopt with the exit status when the process must stop.
std::optional<Flags> parse_flags(int argc, char** argv, int& exit_status) {
  Flags flags;
  CLI::App app{
      "Checks whether EGM placement (CUDA VMM allocations on host NUMA memory) works "
      "here.\nExit status: 0 it works on at least one GPU x node, 1 it does not, 2 bad "
      "flags.",
      "egm-probe"};
  app.add_flag("--json", flags.json, "print one JSON document instead of text");
  app.add_option("--size", flags.size,
                 "bytes per test mapping (K, M, G suffixes; rounded up to the granularity)")
      ->capture_default_str();
  app.add_flag("--selftest", flags.selftest,
               "run the compatibility program without and with libegm.so (EGM_MODE=always) and "
               "compare every check; exit 0 when all match");
  app.add_option("--shim", flags.shim, "libegm.so for --selftest (default: beside egm-probe)");
  app.add_option("--selftest-program", flags.selftest_program,
                 "compatibility program for --selftest (default: egm-compat-checks beside "
                 "egm-probe)");
  app.add_option("--selftest-timeout", flags.selftest_timeout,
                 "seconds each --selftest run may take")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int status = app.exit(error);
    exit_status = status == 0 ? 0 : kUsageError;
    return std::nullopt;
  }
  return flags;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_status = 0;
  std::optional<Flags> flags = parse_flags(argc, argv, exit_status);
  if (!flags) return exit_status;
  if (flags->selftest) {
    std::string directory = egm::probe::executable_directory();
    egm::probe::SelftestOptions options;
    options.shim = flags->shim.empty() ? directory + "/libegm.so" : flags->shim;
    options.program = flags->selftest_program.empty() ? directory + "/egm-compat-checks"
                                                      : flags->selftest_program;
    options.timeout_seconds = flags->selftest_timeout;
    return egm::probe::run_selftest(options);
  }
  std::optional<size_t> size = egm::parse_size(flags->size);
  if (!size || *size == 0) {
    std::fprintf(stderr, "egm-probe: --size %s is not a positive size (bytes, K, M, G, T)\n",
                 flags->size.c_str());
    return kUsageError;
  }
  egm::probe::ProbeReport report = egm::probe::run_probe(*size);
  if (flags->json) {
    std::printf("%s\n", egm::probe::report_json(report).dump(2).c_str());
  } else {
    std::fputs(egm::probe::report_text(report).c_str(), stdout);
  }
  return report.egm_works() ? kWorks : kDoesNotWork;
}
