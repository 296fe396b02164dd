// egm-inspect LOG...: what egm-shim did in a run, from its event logs.
// Exit status: 0 report written, 1 an input or output file failed, 2 bad usage.

#include <glob.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "shim/core/host_ledger.h"
#include "tools/inspect/analysis.h"
#include "tools/inspect/ledger_view.h"
#include "tools/inspect/live.h"
#include "tools/inspect/log_reader.h"
#include "tools/inspect/prometheus.h"
#include "tools/inspect/report.h"

namespace egm::inspect {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFileError = 1;
constexpr int kExitUsage = 2;
constexpr int kMaxTop = 1'000'000;

struct CommandLine {
  std::vector<std::string> logs;
  std::optional<TimeSpec> at;
  int top_n = 10;
  bool json = false;
  bool prometheus = false;
  std::string svg_path;
  pid_t live_pid = 0;  // --live: ask this running process for its table
  bool live_host = false;  // --live without a PID: the host ledger's processes
  std::string ledger_path;
  std::string snapshot_template;
};

constexpr const char* kDescription =
    "Reads egm-shim event logs (EGM_LOG_FILE) and reports live mappings, leaks, bytes per NUMA\n"
    "node and device, requested sizes, the slowest mappings and fallbacks. Several logs (several\n"
    "processes) are merged by timestamp; logs that name their rank and host (EGM_LOG_FILE with\n"
    "%r and %h) are also summed per rank and per host. Damaged lines are skipped with a\n"
    "warning on stderr.";

constexpr const char* kFooter =
    "Examples:\n"
    "  egm-inspect /tmp/egm-1234.log\n"
    "  egm-inspect --at 12.5s --top 5 /tmp/egm-*.log\n"
    "  egm-inspect '/shared/logs/egm-*.log'   (quoted: egm-inspect expands it)\n"
    "  egm-inspect --json --svg nodes.svg run.log > report.json\n"
    "  egm-inspect --prometheus /tmp/egm-*.log > egm.prom\n"
    "  EGM_SNAPSHOT_FILE=/tmp/egm-live-%p egm-inspect --live 1234\n"
    "  egm-inspect --live            (every process of yours on the host, from the ledger)\n"
    "Exit status: 0 report written, 1 a file could not be read or written, 2 bad usage.";

// Checks --at's form now, so a typo is a usage error before any file is read.
std::string check_time_spec(const std::string& text) {
  if (parse_time_spec(text)) return {};
  return "expected a log timestamp like 2024-05-01T10:00:05.000000Z or seconds after the "
         "first event like 12.5s, got '" +
         text + "'";
}

std::string check_count(const std::string& text) {
  std::optional<int64_t> count = parse_signed(text);
  if (count && *count >= 0 && *count <= kMaxTop) return {};
  return "expected a whole number from 0 to " + std::to_string(kMaxTop) + ", got '" + text + "'";
}

std::string check_pid(const std::string& text) {
  std::optional<int64_t> pid = parse_signed(text);
  if (text.empty() || (pid && *pid > 0 && *pid <= INT32_MAX)) return {};
  return "expected a process id, got '" + text + "'";
}

void define_options(CLI::App& app, CommandLine& command_line, std::string& at_text,
                    std::string& live_text) {
  app.add_option("LOG", command_line.logs, "egm-shim log files")->type_name("");
  app.add_option("--live", live_text,
                 "ask running process PID (started with EGM_SNAPSHOT_FILE) for its current\n"
                 "mapping table (SIGUSR2) and report on that; without PID: list every\n"
                 "process of yours on the host with its bytes per node (the host ledger)")
      ->type_name("[PID]")
      ->expected(0, 1)
      ->check(check_pid);
  app.add_option("--ledger", command_line.ledger_path,
                 "the host ledger --live reads (default: as $EGM_LEDGER says, else auto)")
      ->type_name("PATH");
  app.add_option("--snapshot-file", command_line.snapshot_template,
                 "the snapshot path template the program uses (default: $EGM_SNAPSHOT_FILE)")
      ->type_name("PATH");
  app.add_option("--at", at_text,
                 "show live mappings and current bytes at TIME: a timestamp as in the log\n"
                 "(2024-05-01T10:00:05.000000Z) or seconds after the first event (12.5s)")
      ->type_name("TIME")
      ->check(check_time_spec);
  app.add_option("--top", command_line.top_n, "how many slowest mappings to list")
      ->type_name("N")
      ->capture_default_str()
      ->check(check_count);
  app.add_flag("--json", command_line.json, "write the report as JSON instead of text");
  app.add_option("--svg", command_line.svg_path,
                 "also write an SVG plot of mapped bytes per NUMA node over time (spill "
                 "runs: device and host bytes per process)")
      ->type_name("FILE");
  app.add_flag("--prometheus", command_line.prometheus,
               "write the metrics EGM_METRICS_FILE gives (Prometheus text format), per process");
}

// The parsed command line, or the exit status when there is nothing to run.
std::variant<CommandLine, int> parse_command_line(int argc, char** argv) {
  CLI::App app(kDescription, "egm-inspect");
  app.footer(kFooter);
  CommandLine command_line;
  std::string at_text;
  std::string live_text;
  define_options(app, command_line, at_text, live_text);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);  // prints the help to stdout, status 0
  } catch (const CLI::ParseError& error) {
    std::cerr << "egm-inspect: " << error.what() << "\nTry 'egm-inspect --help'.\n";
    return kExitUsage;
  }
  if (!at_text.empty()) command_line.at = parse_time_spec(at_text);
  if (command_line.prometheus &&
      (command_line.json || !command_line.svg_path.empty() || command_line.at)) {
    std::cerr
        << "egm-inspect: --prometheus takes no --json, --svg or --at\nTry 'egm-inspect --help'.\n";
    return kExitUsage;
  }
  if (app.count("--live") > 0 && live_text.empty()) {
    command_line.live_host = true;
    if (command_line.ledger_path.empty()) {
      const char* setting = std::getenv("EGM_LEDGER");
      command_line.ledger_path = egm::ledger_path_for(setting && *setting ? setting : "auto");
    }
    if (command_line.ledger_path.empty()) {
      std::cerr << "egm-inspect: EGM_LEDGER=off: there is no host ledger to list\n";
      return kExitUsage;
    }
    return command_line;
  }
  if (!live_text.empty()) command_line.live_pid = static_cast<pid_t>(*parse_signed(live_text));
  if (command_line.logs.empty() && command_line.live_pid <= 0) {
    std::cerr << "egm-inspect: give LOG files or --live PID\nTry 'egm-inspect --help'.\n";
    return kExitUsage;
  }
  if (command_line.snapshot_template.empty()) {
    const char* from_environment = std::getenv("EGM_SNAPSHOT_FILE");
    if (from_environment != nullptr) command_line.snapshot_template = from_environment;
  }
  return command_line;
}

// A LOG argument with * ? or [ that names no file is a pattern (quoted, so
// the shell left it; or too many ranks' logs for one command line): its
// matches, in name order. No match leaves it as it is, to fail as a file.
std::vector<std::string> expand_patterns(const std::vector<std::string>& logs) {
  std::vector<std::string> paths;
  for (const std::string& log : logs) {
    struct stat status {};
    if (log.find_first_of("*?[") == std::string::npos || ::stat(log.c_str(), &status) == 0) {
      paths.push_back(log);
      continue;
    }
    glob_t matches{};
    if (::glob(log.c_str(), 0, nullptr, &matches) == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) paths.push_back(matches.gl_pathv[i]);
    } else {
      paths.push_back(log);
    }
    ::globfree(&matches);
  }
  return paths;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
  file.close();
  if (!file) throw std::runtime_error("cannot write '" + path + "'");
}

// Not an error (the answer is still right), but likely a mistyped time.
void warn_if_outside_log(const Report& report) {
  if (report.snapshot_is_end || report.events == 0) return;
  if (report.snapshot_us >= report.first_us && report.snapshot_us <= report.last_us) return;
  std::cerr << "egm-inspect: warning: --at " << format_timestamp(report.snapshot_us)
            << " is outside the log (" << format_timestamp(report.first_us) << " to "
            << format_timestamp(report.last_us) << ")\n";
}

// The end-of-log state of every process, as EGM_METRICS_FILE would have it.
int write_prometheus(const std::vector<std::string>& logs) {
  MergedLogReader reader(logs);
  std::string text = prometheus_text(metrics_from_logs(reader));
  for (const Warning& warning : reader.skipped().warnings) {
    std::cerr << "egm-inspect: warning: " << describe(warning) << "\n";
  }
  std::cout << text;
  return kExitOk;
}

int inspect(CommandLine command_line) {
  if (command_line.live_host) {
    std::cout << ledger_report(command_line.ledger_path);
    return kExitOk;
  }
  if (command_line.live_pid > 0) {
    command_line.logs.push_back(
        request_snapshot(command_line.live_pid, command_line.snapshot_template, 5000));
  }
  command_line.logs = expand_patterns(command_line.logs);
  if (command_line.prometheus) return write_prometheus(command_line.logs);
  AnalysisOptions options;
  options.top_n = static_cast<size_t>(command_line.top_n);
  Report report = analyze_files(command_line.logs, options, command_line.at);
  warn_if_outside_log(report);
  for (const Warning& warning : report.warnings) {
    std::cerr << "egm-inspect: warning: " << describe(warning) << "\n";
  }
  if (!command_line.svg_path.empty()) write_file(command_line.svg_path, svg_plot(report));
  std::cout << (command_line.json ? json_report(report) : text_report(report));
  return kExitOk;
}

}  // namespace
}  // namespace egm::inspect

int main(int argc, char** argv) {
  using namespace egm::inspect;
  // The logs are read side by side, one descriptor each: allow as many as may be.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  std::variant<CommandLine, int> parsed = parse_command_line(argc, argv);
  if (const int* status = std::get_if<int>(&parsed)) return *status;
  try {
    return inspect(std::get<CommandLine>(parsed));
  } catch (const std::exception& error) {
    std::cerr << "egm-inspect: " << error.what() << "\n";
    return kExitFileError;
  }
}
