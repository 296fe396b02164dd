// The hostile-inputs matrix: bad values, near-miss names, huge and control-
// byte values, non-regular and foreign files, FIFOs, directories, symlinks,
// against the shim (api_program over the doubles), egm-run and egm-inspect.
// Every run has a time limit and a memory limit (RLIMIT_AS, and the peak RSS
// from wait4); it must finish in time, not die of a signal, and give the
// expected exit status and number of error lines. The matrix's size and
// result are printed at the end.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/preload/harness.h"

namespace {

using preload::contains;
using preload::entries_of;
using preload::lines_of;
using preload::read_file;
using preload::runfile;
using preload::write_file;

enum class Tool { kShim, kEgmRun, kEgmInspect };

constexpr int kAny = -1;

struct Case {
  std::string name;
  Tool tool = Tool::kShim;
  std::map<std::string, std::string> env;  // shim: added to the run's EGM_* settings
  std::vector<std::string> args;           // egm-run / egm-inspect arguments
  int exit_status = 0;
  int error_lines = 0;        // shim: config-error lines; tools: stderr lines (kAny: unchecked)
  int notice_lines = kAny;    // shim: notice lines
  std::string must_not_show;  // never in stderr or the log (another file's text)
  std::string stdin_text;     // fed through a pipe when not empty
  double seconds = 10;
  size_t max_rss_mib = 256;
};

// Files and names the cases refer to as @NAME@ in values and arguments.
std::map<std::string, std::string>& fixtures() {
  static auto* files = new std::map<std::string, std::string>();
  return *files;
}

std::string expand(std::string text) {
  for (const auto& [name, path] : fixtures()) {
    std::string key = "@" + name + "@";
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key)) {
      text.replace(at, key.size(), path);
    }
  }
  return text;
}

std::string log_line(int second, int pid, const std::string& event, const std::string& rest) {
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "2026-01-01T00:%02d:%02d.%06dZ", second / 60 % 60, second % 60,
                0);
  return std::string(stamp) + " pid=" + std::to_string(pid) + " tid=" + std::to_string(pid) +
         " level=info event=" + event + " " + rest + "\n";
}

// A log of `megabytes` of map/unmap pairs, as the shim writes them.
void write_big_log(const std::string& path, size_t megabytes) {
  FILE* file = std::fopen(path.c_str(), "w");
  std::string text;
  for (uint64_t id = 1; text.size() < (megabytes << 20); ++id) {
    std::string common = "api=cudaMalloc addr=0x" + std::to_string(7000000 + id) +
                         " requested=4096 mapped=4096 node=0 device=0";
    text += log_line(
        static_cast<int>(id / 10000), 77, "map",
        "id=" + std::to_string(id) + " " + common + " map_us=" + std::to_string(id % 997) +
            " source=fresh chunk=" + std::to_string(id) + " reason=nearest trigger=always");
    if (id % 1000 != 0) {
      text += log_line(static_cast<int>(id / 10000), 77, "unmap",
                       "id=" + std::to_string(id) + " " + common + " lifetime_us=5 unmap_us=1");
    }
  }
  std::fwrite(text.data(), 1, text.size(), file);
  std::fclose(file);
}

void make_fixtures() {
  std::string dir = preload::make_temp_dir();
  auto& f = fixtures();
  f["DIR"] = dir;
  f["FIFO"] = dir + "/fifo";
  mkfifo(f["FIFO"].c_str(), 0600);
  f["GOOD"] = dir + "/good.conf";
  write_file(f["GOOD"], "EGM_MIN_SIZE=1M\n");
  f["FANCY"] = dir + "/fancy.conf";
  write_file(f["FANCY"],
             "\xEF\xBB\xBF# egm\r\nEGM_FALLBACK = error   # comment\r\n\tEGM_MIN_SIZE\t=\t1M\r\n");
  f["LINK_GOOD"] = dir + "/link-good.conf";
  symlink(f["GOOD"].c_str(), f["LINK_GOOD"].c_str());
  f["LINK_ZERO"] = dir + "/link-zero.conf";
  symlink("/dev/zero", f["LINK_ZERO"].c_str());
  f["DANGLING"] = dir + "/dangling.conf";
  symlink((dir + "/nothing").c_str(), f["DANGLING"].c_str());
  f["LOOP"] = dir + "/loop.conf";
  symlink(f["LOOP"].c_str(), f["LOOP"].c_str());
  f["UNREADABLE"] = dir + "/unreadable.conf";
  write_file(f["UNREADABLE"], "EGM_MIN_SIZE=1M\n");
  chmod(f["UNREADABLE"].c_str(), 0);
  f["EMPTY"] = dir + "/empty";
  write_file(f["EMPTY"], "");
  f["EMPTY_LEDGER"] = dir + "/empty-ledger";
  write_file(f["EMPTY_LEDGER"], "");
  chmod(f["EMPTY_LEDGER"].c_str(), 0600);
  f["LINK_METRICS"] = dir + "/link-metrics.prom";  // the link is replaced, not its target
  write_file(dir + "/metrics-target.prom", "");
  symlink((dir + "/metrics-target.prom").c_str(), f["LINK_METRICS"].c_str());
  f["ZERO_LEDGER"] = dir + "/zero-ledger";
  write_file(f["ZERO_LEDGER"], std::string(4096, '\0'));
  chmod(f["ZERO_LEDGER"].c_str(), 0600);
  f["PASSWD"] = dir + "/passwd-like";
  std::string secret;
  for (int i = 0; i < 30; ++i)
    secret += "user" + std::to_string(i) + ":SECRETHASH:0:0::/:/bin/sh\n";
  write_file(f["PASSWD"], secret);
  f["BAD_LINES"] = dir + "/bad-lines.conf";
  std::string bad_lines;
  for (int i = 0; i < 100'000; ++i) bad_lines += "x\n";
  write_file(f["BAD_LINES"], bad_lines);
  f["BAD_VALUES"] = dir + "/bad-values.conf";
  std::string bad_values;
  for (int i = 0; i < 50'000; ++i) bad_values += "EGM_MODE=x\n";
  write_file(f["BAD_VALUES"], bad_values);
  f["BIG"] = dir + "/big.conf";
  write_file(f["BIG"], "EGM_MODE=" + std::string(3 << 20, 'a') + "\n");
  f["RANGES_FILE"] = dir + "/ranges.conf";
  std::string ranges = "EGM_DEVICES=";
  while (ranges.size() < 900'000) ranges += "0-1023,";
  write_file(f["RANGES_FILE"], ranges + "0\n");
  f["CONTROL"] = dir + "/control.conf";
  write_file(f["CONTROL"], std::string("EGM_MODE=sp\x1b[31m\0ill\n", 21));
  f["LONG_LINE_LOG"] = dir + "/long-line.log";
  write_file(f["LONG_LINE_LOG"], std::string(3 << 20, 'z'));
  f["BINARY_LOG"] = dir + "/binary.log";
  std::string noise;
  for (uint32_t x = 1; noise.size() < (1 << 20);) {
    x = x * 1103515245 + 12345;
    noise += static_cast<char>(x >> 16);
  }
  write_file(f["BINARY_LOG"], noise);
  f["BIG_LOG"] = dir + "/big.log";
  write_big_log(f["BIG_LOG"], 24);
  // For --prometheus: huge, negative and garbage numbers, quotes, backslashes
  // and control bytes in label fields, one pid again and again, many pids.
  f["PROM_LOG"] = dir + "/prometheus.log";
  std::string prom;
  for (int i = 0; i < 2000; ++i) {
    int pid = i % 3 == 0 ? 7 : 100 + i;
    prom += log_line(i % 3600, pid, "chunk-map",
                     "chunk=" + std::to_string(i) + " node=" +
                         (i % 5 == 0 ? "-2147483649" : std::to_string(i % 4)) +
                         " device=0 bytes=" + (i % 7 == 0 ? "99999999999999999999999" : "18446744073709551615"));
    prom += log_line(i % 3600, pid, "chunk-unmap", "chunk=1 node=0 device=0 bytes=-5");
    prom += log_line(i % 3600, pid, "decision",
                     "api=cudaMalloc device=0 device_total=1 placement=\"a\\b\x1b[31m\n reason=x\"y");
    prom += log_line(i % 3600, pid, "summary", "pool_cached_bytes=-1");
    prom += log_line(i % 3600, pid, "map", "id=1 node=999999999999 device=-1 api=cudaMalloc");
  }
  write_file(f["PROM_LOG"], prom);
  f["NOT_A_SHIM"] = dir + "/libnot.so";
  write_file(f["NOT_A_SHIM"], read_file("/bin/true"));
  f["CUT_SHIM"] = dir + "/libcut.so";
  write_file(f["CUT_SHIM"], read_file(runfile("shim/libegm.so")).substr(0, 4096));
  f["HUGE"] = std::string(130'000, '7');
  f["MANY_RANGES"] = "";
  for (int i = 0; i < 8'000; ++i) f["MANY_RANGES"] += "0-1023,";
  f["MANY_RANGES"] += "1";
}

struct Outcome {
  bool timed_out = false;
  int exit_status = -1;
  int signal = 0;
  size_t max_rss_kib = 0;
  std::string out, err, log;
};

bool under_sanitizer() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#endif
#endif
  return false;
}

// Runs argv with `env` (only), a time limit and a memory limit.
Outcome run_limited(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                    const Case& c, const std::string& dir) {
  int in_pipe[2] = {-1, -1};
  if (!c.stdin_text.empty() && pipe(in_pipe) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (!under_sanitizer()) {  // sanitizers reserve terabytes of address space
      rlimit limit{size_t{2} << 30, size_t{2} << 30};
      setrlimit(RLIMIT_AS, &limit);
    }
    int in = c.stdin_text.empty() ? open("/dev/null", O_RDONLY) : in_pipe[0];
    dup2(in, STDIN_FILENO);
    if (in_pipe[1] >= 0) close(in_pipe[1]);
    int out = open((dir + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open((dir + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(126);
  }
  if (in_pipe[0] >= 0) {
    close(in_pipe[0]);
    signal(SIGPIPE, SIG_IGN);
    (void)!write(in_pipe[1], c.stdin_text.data(), c.stdin_text.size());
    close(in_pipe[1]);
  }
  Outcome outcome;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(c.seconds);
  int status = 0;
  rusage usage{};
  for (;;) {
    pid_t done = wait4(pid, &status, WNOHANG, &usage);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      outcome.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      wait4(pid, &status, 0, &usage);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) outcome.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  outcome.max_rss_kib = static_cast<size_t>(usage.ru_maxrss);
  outcome.out = read_file(dir + "/stdout");
  outcome.err = read_file(dir + "/stderr");
  return outcome;
}

size_t count_lines_with(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (const std::string& line : lines_of(text)) count += contains(line, part) ? 1 : 0;
  return count;
}

Outcome run_case(const Case& c) {
  std::string dir = preload::make_temp_dir();
  std::map<std::string, std::string> vars = {{"PATH", "/usr/bin:/bin"}};
  std::vector<std::string> argv;
  switch (c.tool) {
    case Tool::kShim: {
      argv = {runfile("tests/preload/api_program"), "series"};
      vars["LD_LIBRARY_PATH"] = runfile("tests/doubles");
      vars["LD_PRELOAD"] = runfile("shim/libegm.so");
      vars["ALLOC_SERIES"] = "cudaMalloc:3M";
      vars["ALLOC_PROGRAM_REPORT"] = dir + "/report.txt";
      vars["EGM_LOG_FILE"] = dir + "/egm.log";
      break;
    }
    case Tool::kEgmRun: argv = {runfile("tools/run/egm-run")}; break;
    case Tool::kEgmInspect: argv = {runfile("tools/inspect/egm-inspect")}; break;
  }
  for (const std::string& arg : c.args) argv.push_back(expand(arg));
  for (const auto& [name, value] : c.env) vars[name] = expand(value);
  for (const char* name : {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) vars[name] = value;
  }
  std::vector<std::string> env;
  for (const auto& [name, value] : vars) env.push_back(name + "=" + value);
  Outcome outcome = run_limited(argv, env, c, dir);
  outcome.log = read_file(dir + "/egm.log");
  return outcome;
}

std::vector<Case> shim_value_cases() {
  std::vector<Case> cases;
  auto bad = [&](std::string name, std::string variable, std::string value) {
    cases.push_back({name, Tool::kShim, {{variable, value}}, {}, 0, 1, 0});
  };
  auto good = [&](std::string name, std::string variable, std::string value) {
    cases.push_back({name, Tool::kShim, {{variable, value}}, {}, 0, 0, 0});
  };
  // Huge numbers and ranges (these looped without end before the fix).
  bad("devices_int_max", "EGM_DEVICES", "2147483647");
  bad("devices_top_range", "EGM_DEVICES", "2147483640-2147483647");
  bad("devices_above_int", "EGM_DEVICES", "2147483648");
  bad("devices_20_digits", "EGM_DEVICES", "99999999999999999999");
  bad("devices_1024", "EGM_DEVICES", "0-1024");
  bad("devices_130k_digits", "EGM_DEVICES", "@HUGE@");
  good("devices_many_ranges", "EGM_DEVICES", "@MANY_RANGES@");
  bad("bind_int_max", "EGM_NUMA_POLICY", "bind:2147483647");
  bad("interleave_int_max", "EGM_NUMA_POLICY", "interleave:2147483647");
  bad("interleave_whole_range", "EGM_NUMA_POLICY", "interleave:0-2147483647");
  bad("preferred_int_max", "EGM_NUMA_POLICY", "preferred:2147483647");
  bad("weighted_int_max", "EGM_NUMA_POLICY", "weighted:2147483647=1");
  bad("weighted_weight_overflow", "EGM_NUMA_POLICY", "weighted:0=4294967296");
  bad("node_limit_int_max", "EGM_NODE_LIMIT", "2147483647:1G");
  bad("node_limit_size_overflow", "EGM_NODE_LIMIT", "0:99999999999999999999");
  bad("min_size_2_64", "EGM_MIN_SIZE", "18446744073709551616");
  bad("min_size_shift_overflow", "EGM_MIN_SIZE", "17179869184T");
  bad("pool_limit_130k_digits", "EGM_POOL_LIMIT", "@HUGE@");
  bad("prealloc_overflow", "EGM_POOL_PREALLOC", "99999999999999999999G");
  bad("reserve_exponent", "EGM_DEVICE_RESERVE", "1e9");
  // Malformed forms.
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"dash", "-"},
                                                        {"negative", "-1"},
                                                        {"open_range", "0-"},
                                                        {"comma", ","},
                                                        {"double_comma", "0,,1"},
                                                        {"reversed", "1-0"},
                                                        {"hex", "0x1"},
                                                        {"blank_before", " 0"},
                                                        {"blank_after", "0 "},
                                                        {"fullwidth_digit", "\xef\xbc\x91"},
                                                        {"empty", ""}}) {
    bad("devices_" + name, "EGM_DEVICES", value);
  }
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"upper", "BIND:0"},
                                                        {"blank", "bind: 0"},
                                                        {"newline", "bind:0\n"},
                                                        {"empty_arg", "nearest:"},
                                                        {"two_dashes", "bind:0-0-0"},
                                                        {"empty", ""},
                                                        {"colon_only", ":"},
                                                        {"weights_empty", "weighted:"}}) {
    bad("policy_" + name, "EGM_NUMA_POLICY", value);
  }
  for (auto [name, value] :
       std::vector<std::pair<std::string, std::string>>{{"blank", " 1"},
                                                        {"trailing", "1 "},
                                                        {"hex", "0x10"},
                                                        {"double_suffix", "1KK"},
                                                        {"minus_zero", "-0"},
                                                        {"empty", ""},
                                                        {"fraction", "1.5G"},
                                                        {"lower_suffix", "1g"}}) {
    bad("min_size_" + name, "EGM_MIN_SIZE", value);
  }
  for (auto [variable, value] :
       std::vector<std::pair<std::string, std::string>>{{"EGM_ENABLE", "yes please"},
                                                        {"EGM_ENABLE", "TRUE"},
                                                        {"EGM_ENABLE", "1\n"},
                                                        {"EGM_ENABLE", ""},
                                                        {"EGM_MODE", "Always"},
                                                        {"EGM_MODE", ""},
                                                        {"EGM_LOG_LEVEL", "verbose"},
                                                        {"EGM_LOG_LEVEL", ""},
                                                        {"EGM_LOG_FILE", "/tmp/%n"},
                                                        {"EGM_LOG_FILE", "/tmp/x%"},
                                                        {"EGM_SNAPSHOT_FILE", "%"},
                                                        {"EGM_APIS", ""},
                                                        {"EGM_APIS", ","},
                                                        {"EGM_APIS", "cudaMalloc,"},
                                                        {"EGM_APIS", "cudamalloc"},
                                                        {"EGM_FALLBACK", "host"},
                                                        {"EGM_MEMINFO", "host"},
                                                        {"EGM_PEER_ACCESS", "none"},
                                                        {"EGM_GRANULARITY", "max"},
                                                        {"EGM_HOOK_DRIVER", "2"},
                                                        {"EGM_SUBALLOC", "-1"},
                                                        {"EGM_NODE_LIMIT", ":"},
                                                        {"EGM_NODE_LIMIT", "0:"},
                                                        {"EGM_NODE_LIMIT", "0:1G,"},
                                                        {"EGM_MAX_SIZE", "K"},
                                                        {"EGM_STAGING", "enable"},
                                                        {"EGM_STAGING_WINDOW", "18446744073709551616"}}) {
    bad("value_" + variable.substr(4) + "_" + std::to_string(cases.size()), variable, value);
  }
  // Control bytes and huge values: one line, escaped and cut.
  bad("mode_escape_sequence", "EGM_MODE", "\x1b[2J\x1b[31mspill\r\x07");
  bad("mode_130k", "EGM_MODE", "@HUGE@");
  bad("log_level_tab", "EGM_LOG_LEVEL", "info\t");
  // Hostile ranks: no error, no hang (HostileRanks checks where the log goes).
  good("rank_huge", "RANK", "@HUGE@");
  good("rank_escape_sequence", "SLURM_PROCID", "\x1b[2J\x1b[31m0\r\x07");
  good("rank_path", "PMI_RANK", "../../../../tmp/x");
  // Near-miss names: one notice each, redirection stays on (no error).
  for (std::string name : {"EGM_DEVICE", "EGM_NUMA_POLCY", "EGM_MODE_", "EGM_", "EGM_LOGFILE",
                           "EGM_MIN_SIZE2", "EGM_min_size", "EGM_\x1b[31m"}) {
    cases.push_back(
        {"near_miss_" + std::to_string(cases.size()), Tool::kShim, {{name, "1"}}, {}, 0, 0, 1});
  }
  cases.push_back({"near_miss_long_name",
                   Tool::kShim,
                   {{"EGM_" + std::string(100'000, 'X'), "1"}},
                   {},
                   0,
                   0,
                   1});
  cases.push_back({"lowercase_prefix_ignored", Tool::kShim, {{"egm_mode", "off"}}, {}, 0, 0, 0});
  std::map<std::string, std::string> many;
  for (int i = 0; i < 40; ++i) many["EGM_UNKNOWN_" + std::to_string(i)] = "1";
  cases.push_back({"forty_unknown_names", Tool::kShim, many, {}, 0, 0, 11});
  // Several bad values: each has its line, up to ten, then a count.
  std::map<std::string, std::string> several = {
      {"EGM_MODE", "x"}, {"EGM_FALLBACK", "x"}, {"EGM_DEVICES", "2147483647"}};
  cases.push_back({"three_bad_values", Tool::kShim, several, {}, 0, 3, 0});
  return cases;
}

std::vector<Case> shim_file_cases() {
  std::vector<Case> cases;
  auto config = [&](std::string name, std::string path, int errors) {
    cases.push_back({"config_" + name, Tool::kShim, {{"EGM_CONFIG", path}}, {}, 0, errors, 0});
  };
  config("dev_zero", "/dev/zero", 1);
  config("dev_urandom", "/dev/urandom", 1);
  config("dev_null", "/dev/null", 1);
  config("fifo_without_writer", "@FIFO@", 1);
  config("directory", "@DIR@", 1);
  config("root_directory", "/", 1);
  config("proc_self_fd", "/proc/self/fd/0", 1);
  config("missing", "@DIR@/missing.conf", 1);
  config("dangling_symlink", "@DANGLING@", 1);
  config("symlink_loop", "@LOOP@", 1);
  config("symlink_to_zero", "@LINK_ZERO@", 1);
  config("symlink_to_good", "@LINK_GOOD@", 0);
  config("good", "@GOOD@", 0);
  config("bom_crlf_comments_blanks", "@FANCY@", 0);
  config("empty_file", "@EMPTY@", 0);
  config("unreadable", "@UNREADABLE@", geteuid() == 0 ? 0 : 1);  // root reads it anyway
  config("above_one_mebibyte", "@BIG@", 1);
  config("huge_range_list", "@RANGES_FILE@", 0);
  config("control_bytes", "@CONTROL@", 1);
  config("trailing_newline_in_name", "@GOOD@\n", 1);
  config("100000_bad_lines", "@BAD_LINES@", 11);
  config("50000_bad_values", "@BAD_VALUES@", 11);
  Case passwd{
      "config_foreign_file_not_echoed", Tool::kShim, {{"EGM_CONFIG", "@PASSWD@"}}, {}, 0, 11, 0};
  passwd.must_not_show = "SECRETHASH";
  cases.push_back(passwd);
  Case from_stdin{"config_stdin_pipe", Tool::kShim, {{"EGM_CONFIG", "/dev/stdin"}}, {}, 0, 1, 0};
  from_stdin.stdin_text = "EGM_MODE=spill\nPROGRAM INPUT SECRET\n";
  from_stdin.must_not_show = "PROGRAM INPUT SECRET";
  cases.push_back(from_stdin);
  // EGM_STRICT=1: stop before main with status 1, still within the limits.
  for (std::string path : {"/dev/zero", "@FIFO@", "@DIR@", "@BAD_LINES@"}) {
    cases.push_back({"strict_config_" + std::to_string(cases.size()),
                     Tool::kShim,
                     {{"EGM_CONFIG", path}, {"EGM_STRICT", "1"}},
                     {},
                     1,
                     kAny,
                     kAny});
  }
  cases.push_back({"strict_devices_int_max",
                   Tool::kShim,
                   {{"EGM_DEVICES", "2147483647"}, {"EGM_STRICT", "1"}},
                   {},
                   1,
                   kAny,
                   kAny});
  return cases;
}

// EGM_LEDGER (with a cap, so that the ledger is used) and EGM_METRICS_FILE
// naming files that are not theirs: one notice line, redirection stays on,
// and the file named is left as it was (HostileOutputFiles checks that).
std::vector<Case> shim_output_file_cases() {
  std::vector<Case> cases;
  auto ledger = [&](std::string name, std::string path, int errors, int notices) {
    cases.push_back({"ledger_" + name,
                     Tool::kShim,
                     {{"EGM_LEDGER", path}, {"EGM_NODE_LIMIT", "0:1G"}},
                     {},
                     0,
                     errors,
                     notices});
  };
  ledger("fifo", "@FIFO@", 0, 1);
  ledger("directory", "@DIR@", 0, 1);
  ledger("dev_null", "/dev/null", 0, 1);
  ledger("dev_full", "/dev/full", 0, 1);
  ledger("missing_directory", "@DIR@/missing/ledger", 0, 1);
  ledger("symlink", "@LINK_GOOD@", 0, 1);
  ledger("dangling_symlink", "@DANGLING@", 0, 1);
  ledger("garbage_file", "@PASSWD@", 0, 1);
  ledger("empty_file", "@EMPTY_LEDGER@", 0, 0);  // an empty file is a new ledger
  ledger("wrong_size_zeros", "@ZERO_LEDGER@", 0, 1);
  ledger("4_kib_path", "/tmp/" + std::string(4096, 'l'), 0, 1);
  ledger("control_bytes", "@DIR@/led\x1b[31mger\x07", 0, 0);  // a legal name
  ledger("relative", "ledger", 1, 0);
  ledger("empty", "", 1, 0);
  auto metrics = [&](std::string name, std::map<std::string, std::string> env, int errors,
                     int notices) {
    cases.push_back({"metrics_" + name, Tool::kShim, env, {}, 0, errors, notices});
  };
  metrics("fifo", {{"EGM_METRICS_FILE", "@FIFO@"}}, 0, 1);
  metrics("directory", {{"EGM_METRICS_FILE", "@DIR@"}}, 0, 1);
  metrics("dev_null", {{"EGM_METRICS_FILE", "/dev/null"}}, 0, 1);
  metrics("dev_full", {{"EGM_METRICS_FILE", "/dev/full"}}, 0, 1);
  metrics("missing_directory", {{"EGM_METRICS_FILE", "@DIR@/missing/m.prom"}}, 0, 1);
  metrics("symlink_to_a_file", {{"EGM_METRICS_FILE", "@LINK_METRICS@"}}, 0, 0);
  metrics("4_kib_path", {{"EGM_METRICS_FILE", "/tmp/" + std::string(4096, 'm')}}, 0, 1);
  metrics("hostile_rank",
          {{"EGM_METRICS_FILE", "@DIR@/m-%r-%h.prom"}, {"RANK", "../../\x1b[2J"}}, 0, 0);
  metrics("huge_rank", {{"EGM_METRICS_FILE", "@DIR@/m-%r.prom"}, {"RANK", "@HUGE@"}}, 0, 0);
  for (std::string interval :
       {"0", "0.09", "86401", "1e9", "-1", "nan", "inf", "0x10", "", " 5", "5s", "@HUGE@"}) {
    metrics("interval_" + std::to_string(cases.size()),
            {{"EGM_METRICS_FILE", "@DIR@/i.prom"}, {"EGM_METRICS_INTERVAL", interval}}, 1, 0);
  }
  metrics("interval_smallest",
          {{"EGM_METRICS_FILE", "@DIR@/s.prom"}, {"EGM_METRICS_INTERVAL", "0.1"}}, 0, 0);
  metrics("interval_largest",
          {{"EGM_METRICS_FILE", "@DIR@/l.prom"}, {"EGM_METRICS_INTERVAL", "86400"}}, 0, 0);
  return cases;
}

std::vector<Case> egm_run_cases() {
  std::vector<Case> cases;
  auto run = [&](std::string name, std::vector<std::string> args, int status, int lines) {
    cases.push_back({"egm_run_" + name, Tool::kEgmRun, {}, std::move(args), status, lines});
  };
  run("devices_int_max", {"--devices", "2147483647", "--dry-run", "--", "/bin/true"}, 2, 1);
  run("devices_top_range", {"--devices=2147483640-2147483647", "--", "/bin/true"}, 2, 1);
  run("bind_int_max", {"--numa-policy", "bind:2147483647", "--", "/bin/true"}, 2, 1);
  run("interleave_int_max", {"--numa-policy", "interleave:2147483647", "--", "/bin/true"}, 2, 1);
  run("many_ranges_ok", {"--dry-run", "--devices", "@MANY_RANGES@", "--", "/bin/true"}, 0, 0);
  run("mode_130k", {"--mode", "@HUGE@", "--", "/bin/true"}, 2, 1);
  run("config_dev_zero", {"--config", "/dev/zero", "--", "/bin/true"}, 2, 1);
  run("config_fifo", {"--config", "@FIFO@", "--", "/bin/true"}, 2, 1);
  run("config_directory", {"--config", "@DIR@", "--", "/bin/true"}, 2, 1);
  run("config_bad_lines", {"--config", "@BAD_LINES@", "--", "/bin/true"}, 2, 11);
  run("lib_passwd", {"--lib", "/etc/passwd", "--", "/bin/true"}, 2, 1);
  run("lib_dev_zero", {"--lib", "/dev/zero", "--", "/bin/true"}, 2, 1);
  run("lib_fifo", {"--lib", "@FIFO@", "--", "/bin/true"}, 2, 1);
  run("lib_directory", {"--lib", "@DIR@", "--", "/bin/true"}, 2, 1);
  run("lib_executable", {"--lib", "@NOT_A_SHIM@", "--", "/bin/true"}, 2, 1);
  run("lib_truncated_shim", {"--lib", "@CUT_SHIM@", "--", "/bin/true"}, 2, 1);
  run("lib_empty", {"--lib", "@EMPTY@", "--", "/bin/true"}, 2, 1);
  run("lib_missing", {"--lib", "@DIR@/missing.so", "--", "/bin/true"}, 2, 1);
  run("lib_empty_path", {"--lib=", "--", "/bin/true"}, 2, 1);
  run("unknown_flag_control_bytes", {"--\x1b[31m", "--", "/bin/true"}, 2, 1);
  return cases;
}

std::vector<Case> egm_inspect_cases() {
  std::vector<Case> cases;
  auto inspect = [&](std::string name, std::vector<std::string> args, int status, int lines) {
    cases.push_back({"egm_inspect_" + name, Tool::kEgmInspect, {}, std::move(args), status, lines});
  };
  inspect("dev_zero", {"/dev/zero"}, 1, 1);
  inspect("dev_urandom", {"/dev/urandom"}, 1, 1);
  inspect("directory", {"@DIR@"}, 1, 1);
  inspect("missing", {"@DIR@/missing.log"}, 1, 1);
  inspect("empty", {"@EMPTY@"}, 0, 0);
  inspect("3_mib_line", {"@LONG_LINE_LOG@"}, 0, 1);
  inspect("binary_noise", {"@BINARY_LOG@"}, 0, kAny);
  inspect("passwd", {"/etc/passwd"}, 0, kAny);
  inspect("bad_top", {"--top", "99999999999", "@EMPTY@"}, 2, kAny);
  inspect("bad_at", {"--at", "\x1b[31m", "@EMPTY@"}, 2, kAny);
  inspect("live_missing_process", {"--live", "2147483646", "--snapshot-file", "/tmp/x-%p"}, 1, 1);
  inspect("prometheus_hostile_fields", {"--prometheus", "@PROM_LOG@"}, 0, kAny);
  inspect("prometheus_binary_noise", {"--prometheus", "@BINARY_LOG@"}, 0, kAny);
  inspect("prometheus_dev_zero", {"--prometheus", "/dev/zero"}, 1, 1);
  inspect("ledger_fifo", {"--live", "--ledger", "@FIFO@"}, 1, 1);
  inspect("ledger_directory", {"--live", "--ledger", "@DIR@"}, 1, 1);
  inspect("ledger_foreign_file", {"--live", "--ledger", "@PASSWD@"}, 1, 1);
  inspect("ledger_zeros", {"--live", "--ledger", "@ZERO_LEDGER@"}, 1, 1);
  inspect("ledger_dev_zero", {"--live", "--ledger", "/dev/zero"}, 1, 1);
  inspect("ledger_missing", {"--live", "--ledger", "@DIR@/missing"}, 0, 0);  // none running
  Case prom_big{"egm_inspect_prometheus_24_mib_log", Tool::kEgmInspect, {},
                {"--prometheus", "@BIG_LOG@"}, 0, 0};
  prom_big.max_rss_mib = 64;
  prom_big.seconds = 60;
  cases.push_back(prom_big);
  Case stdin_log{"egm_inspect_stdin_pipe", Tool::kEgmInspect, {}, {"/dev/stdin"}, 0, 0};
  stdin_log.stdin_text = log_line(1, 5, "map",
                                  "id=1 api=cudaMalloc addr=0x10 requested=1 mapped=1 node=0 "
                                  "device=0 map_us=3");
  cases.push_back(stdin_log);
  // Streaming: memory is bounded by the live mappings, not by the log.
  Case big{"egm_inspect_24_mib_log_in_64_mib", Tool::kEgmInspect, {}, {"@BIG_LOG@"}, 0, 0};
  big.max_rss_mib = 64;
  big.seconds = 60;
  cases.push_back(big);
  Case big_json{"egm_inspect_24_mib_log_json_svg",
                Tool::kEgmInspect,
                {},
                {"--json", "--svg", "@DIR@/plot.svg", "@BIG_LOG@"},
                0,
                0};
  big_json.max_rss_mib = 64;
  big_json.seconds = 60;
  cases.push_back(big_json);
  return cases;
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (auto part : {shim_value_cases(), shim_file_cases(), shim_output_file_cases(),
                    egm_run_cases(), egm_inspect_cases()}) {
    cases.insert(cases.end(), part.begin(), part.end());
  }
  return cases;
}

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

size_t g_passed = 0;
size_t g_failed = 0;

class HostileInputs : public ::testing::TestWithParam<Case> {
 public:
  static void SetUpTestSuite() {
    if (fixtures().empty()) make_fixtures();
  }
  static void TearDownTestSuite() {
    std::printf("hostile inputs matrix: %zu runs, %zu passed, %zu failed\n", g_passed + g_failed,
                g_passed, g_failed);
  }
  void TearDown() override { (HasFailure() ? g_failed : g_passed) += 1; }
};

TEST_P(HostileInputs, FinishesInTimeWithinMemoryWithTheExpectedLines) {
  const Case& c = GetParam();
  Outcome outcome = run_case(c);
  std::string seen = "\n--- stderr (first 2000 bytes):\n" + outcome.err.substr(0, 2000) +
                     "\n--- log (first 2000 bytes):\n" + outcome.log.substr(0, 2000);
  ASSERT_FALSE(outcome.timed_out) << "no result within " << c.seconds << " s" << seen;
  ASSERT_EQ(outcome.signal, 0) << "killed by signal " << outcome.signal << seen;
  // AddressSanitizer keeps up to 256 MiB of freed memory in quarantine.
  size_t max_rss_mib = c.max_rss_mib + (under_sanitizer() ? 512 : 0);
  EXPECT_LE(outcome.max_rss_kib / 1024, max_rss_mib) << "peak RSS in MiB" << seen;
  EXPECT_EQ(outcome.exit_status, c.exit_status) << seen;
  // Every line bounded, whatever the input.
  for (const std::string& line : lines_of(outcome.err + outcome.log)) {
    EXPECT_LE(line.size(), 2000u) << line.substr(0, 200);
  }
  if (!c.must_not_show.empty()) {
    EXPECT_FALSE(contains(outcome.err + outcome.log, c.must_not_show)) << seen;
  }
  if (c.tool == Tool::kShim) {
    // A bad EGM_LOG_FILE sends the lines to stderr.
    const std::string& log = outcome.log.empty() ? outcome.err : outcome.log;
    if (c.error_lines != kAny) {
      EXPECT_EQ(count_lines_with(log, "event=config-error"), static_cast<size_t>(c.error_lines))
          << seen;
    }
    if (c.notice_lines != kAny) {
      EXPECT_EQ(count_lines_with(log, "event=notice"), static_cast<size_t>(c.notice_lines)) << seen;
    }
    if (c.exit_status == 0) {  // main ran and the program's own output is intact
      EXPECT_TRUE(contains(outcome.out, "a1 free=cudaSuccess")) << outcome.out << seen;
      bool redirected = contains(outcome.log, "event=map ");
      EXPECT_EQ(redirected, c.error_lines == 0)
          << "a config error must switch redirection off" << seen;
    }
  } else if (c.error_lines != kAny) {
    EXPECT_EQ(lines_of(outcome.err).size(), static_cast<size_t>(c.error_lines)) << seen;
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string name = std::to_string(info.index) + "_";
  for (char c : info.param.name) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Matrix, HostileInputs, ::testing::ValuesIn(all_cases()), case_name);

// Rank values an attacker or a broken launcher may set: EGM_LOG_FILE's %r
// must stay one plain component of the directory the template names.
std::vector<std::pair<std::string, std::string>> hostile_ranks() {
  return {{"RANK", "../../escaped"},
          {"RANK", ".."},
          {"RANK", "/tmp/escaped"},
          {"SLURM_PROCID", "1/../../escaped"},
          {"SLURM_PROCID", "\x1b]0;title\x07\x1b[2J"},
          {"OMPI_COMM_WORLD_RANK", "1\n2"},
          {"OMPI_COMM_WORLD_RANK", "@HUGE@"},
          {"PMI_RANK", "-1"},
          {"PMI_RANK", "0x10"},
          {"RANK", " 7"},
          {"RANK", "%p"},
          {"RANK", "\xef\xbc\x91"},
          {"RANK", "1234567890"}};
}

TEST(HostileRanks, LogStaysInItsDirectoryAsNoRank) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  for (const auto& [variable, value] : hostile_ranks()) {
    std::string dir = preload::make_temp_dir();
    ASSERT_EQ(mkdir((dir + "/logs").c_str(), 0700), 0);
    std::string name = "rank_" + variable;
    Case c{name, Tool::kShim, {{variable, value}, {"EGM_LOG_FILE", dir + "/logs/egm-%r-%h.log"}}};
    Outcome outcome = run_case(c);
    std::string seen = variable + "=" + value.substr(0, 40) + "\n" + outcome.err;
    EXPECT_EQ(outcome.exit_status, 0) << seen;
    EXPECT_EQ(outcome.signal, 0) << seen;
    EXPECT_EQ(entries_of(dir), std::set<std::string>{"logs"}) << seen;
    std::string expected = std::string("egm-norank-") + host + ".log";
    EXPECT_EQ(entries_of(dir + "/logs"), std::set<std::string>{expected}) << seen;
    std::string log = read_file(dir + "/logs/" + expected);
    EXPECT_TRUE(contains(log, " rank=norank host=")) << seen << log.substr(0, 300);
  }
}

// The live view must not kill a program that has no SIGUSR2 handler.
TEST(HostileLiveView, ProcessWithoutTheHandlerIsNotSignalled) {
  pid_t child = fork();
  if (child == 0) {
    execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(126);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Case c{"live",
         Tool::kEgmInspect,
         {},
         {"--live", std::to_string(child), "--snapshot-file",
          fixtures().empty() ? "/tmp/x-%p" : "@DIR@/snap-%p"},
         1,
         1};
  Outcome outcome = run_case(c);
  EXPECT_EQ(outcome.exit_status, 1) << outcome.err;
  EXPECT_TRUE(contains(outcome.err, "does not handle SIGUSR2")) << outcome.err;
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, WNOHANG), 0) << "the program was killed";
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
}

}  // namespace

namespace {

// EGM_METRICS_FILE and EGM_LEDGER naming a FIFO, a directory or a device:
// the program runs as without them, and the name still holds what it held
// (rename() over it would have replaced a FIFO a reader waits on, or, run
// as root, /dev/null itself).
TEST(HostileOutputFiles, WhatTheNameHeldIsLeftAsItWas) {
  for (const char* variable : {"EGM_METRICS_FILE", "EGM_LEDGER"}) {
    std::string dir = preload::make_temp_dir();
    std::string fifo = dir + "/fifo";
    std::string directory = dir + "/directory";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    ASSERT_EQ(mkdir(directory.c_str(), 0700), 0);
    for (const std::string& path : {fifo, directory}) {
      Case c{variable, Tool::kShim, {{variable, path}, {"EGM_NODE_LIMIT", "0:1G"}}};
      c.seconds = 10;
      Outcome outcome = run_case(c);
      EXPECT_FALSE(outcome.timed_out) << variable << "=" << path;
      EXPECT_EQ(outcome.exit_status, 0) << variable << "=" << path << "\n" << outcome.err;
      EXPECT_TRUE(contains(outcome.out, "a1 free=cudaSuccess")) << outcome.out;
      struct stat status {};
      ASSERT_EQ(lstat(path.c_str(), &status), 0) << variable << "=" << path << " was removed";
      EXPECT_EQ(status.st_mode & S_IFMT, path == fifo ? S_IFIFO : S_IFDIR)
          << variable << "=" << path << " was replaced";
    }
    // Nothing left beside them (no temporary file).
    EXPECT_EQ(entries_of(dir), (std::set<std::string>{"directory", "fifo"})) << variable;
  }
}

}  // namespace
