#include "shim/core/process_hooks.h"

#include <cxxabi.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "shim/core/helper_thread.h"
#include "shim/core/log.h"

namespace egm {
namespace {

ProcessHookTarget* hooked_target = nullptr;
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
struct sigaction previous_actions[NSIG];
int wake_pipe[2] = {-1, -1};
// The process whose thread reads the wake pipe: a forked child inherits the
// handler and the pipe, but its SIGUSR2 must never wake the parent.
pid_t live_view_owner = 0;

// ---- async-signal-safe formatting (no locks, no allocation) ----

struct LineBuffer {
  char text[256];
  size_t length = 0;
  void add(const char* part) {
    while (*part && length < sizeof text - 1) text[length++] = *part++;
  }
  void add_number(long long value, int width = 0) {
    char digits[24];
    int count = 0;
    bool negative = value < 0;
    unsigned long long magnitude = negative ? -static_cast<unsigned long long>(value) : value;
    do digits[count++] = static_cast<char>('0' + magnitude % 10);
    while ((magnitude /= 10) != 0);
    while (count < width) digits[count++] = '0';
    if (negative) add("-");
    while (count > 0 && length < sizeof text - 1) text[length++] = digits[--count];
  }
};

// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
void add_utc_timestamp(LineBuffer& line) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  long long days = now.tv_sec / 86400, seconds = now.tv_sec % 86400;
  long long z = days + 719468, era = z / 146097, doe = z - era * 146097;
  long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  long long year = yoe + era * 400 + (month <= 2);
  line.add_number(year, 4), line.add("-"), line.add_number(month, 2), line.add("-");
  line.add_number(day, 2), line.add("T"), line.add_number(seconds / 3600, 2), line.add(":");
  line.add_number(seconds / 60 % 60, 2), line.add(":"), line.add_number(seconds % 60, 2);
  line.add("."), line.add_number(now.tv_nsec / 1000, 6), line.add("Z");
}

void write_fatal_signal_line(int signal_number) {
  int fd = EventLog::file_descriptor();
  if (fd < 0 || hooked_target == nullptr) return;
  LineBuffer line;
  add_utc_timestamp(line);
  line.add(" pid="), line.add_number(getpid()), line.add(" tid="), line.add_number(gettid());
  line.add(" level=error event=fatal-signal signal="), line.add_number(signal_number);
  line.add(" live="), line.add_number(static_cast<long long>(hooked_target->live_count()));
  line.add("\n");
  EventLog::write_line_quietly(fd, line.text, line.length);
}

// Says which signal ended the process, then lets the previous handler (or
// the default action) have it.
void on_fatal_signal(int signal_number, siginfo_t* info, void* context) {
  int saved_errno = errno;
  write_fatal_signal_line(signal_number);
  const struct sigaction& previous = previous_actions[signal_number];
  errno = saved_errno;
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(signal_number, info, context);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal_number);
    return;
  }
  sigaction(signal_number, &previous, nullptr);
  raise(signal_number);
}

void install_fatal_signal_handlers() {
  struct sigaction action {};
  action.sa_sigaction = on_fatal_signal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (int signal_number : kFatalSignals) {
    sigaction(signal_number, &action, &previous_actions[signal_number]);
  }
}

// ---- live view: SIGUSR2 wakes a thread that writes the snapshot ----

void on_snapshot_request(int) {
  int saved_errno = errno;
  if (getpid() != live_view_owner) return;  // a forked child (before its fork handler ran)
  char wake = 1;
  ssize_t ignored = write(wake_pipe[1], &wake, 1);
  (void)ignored;
  errno = saved_errno;
}

bool install_snapshot_handler(ProcessHookTarget& target, const std::string& path_template) {
  struct sigaction current {};
  sigaction(SIGUSR2, nullptr, &current);
  if (current.sa_handler != SIG_DFL) return false;  // the program uses SIGUSR2 itself
  if (pipe2(wake_pipe, O_CLOEXEC) != 0) return false;
  live_view_owner = getpid();
  fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);  // a handler must never block
  start_helper_thread([&target, path_template] {
    char wake;
    while (read(wake_pipe[0], &wake, 1) > 0 || errno == EINTR) {
      target.write_snapshot(expand_path_template(path_template, getpid()));
    }
  });
  struct sigaction action {};
  action.sa_handler = on_snapshot_request;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  return sigaction(SIGUSR2, &action, nullptr) == 0;
}

// The child has no live view (no thread reads the pipe): SIGUSR2 gets the
// disposition it would have without the shim, and the parent's pipe is closed.
void stop_live_view_in_child() {
  if (live_view_owner == 0) return;
  struct sigaction current {};
  if (sigaction(SIGUSR2, nullptr, &current) == 0 && current.sa_handler == on_snapshot_request) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(SIGUSR2, &default_action, nullptr);
  }
  for (int& end : wake_pipe) {
    if (end >= 0) close(end);
    end = -1;
  }
}

void on_fork_child() {
  stop_live_view_in_child();
  if (hooked_target != nullptr) hooked_target->on_fork_child();
}

ProcessHookTarget* summary_target = nullptr;

void write_summary_now(void*) {
  if (summary_target != nullptr) summary_target->write_exit_summary();
}

}  // namespace

void write_exit_summary_last(ProcessHookTarget& target) {
  summary_target = &target;
  // A null DSO handle: not run by libegm.so's own __cxa_finalize (which
  // follows this destructor), only by exit() once _dl_fini has returned.
  if (abi::__cxa_atexit(write_summary_now, nullptr, nullptr) != 0) write_summary_now(nullptr);
}

void install_process_hooks(ProcessHookTarget& target, const ProcessHookSettings& settings) {
  hooked_target = &target;
  pthread_atfork(nullptr, nullptr, on_fork_child);
  if (settings.fatal_signal_line) install_fatal_signal_handlers();
  if (!settings.snapshot_template.empty() &&
      !install_snapshot_handler(target, settings.snapshot_template)) {
    target.note("the live view (EGM_SNAPSHOT_FILE) is off: SIGUSR2 is in use by the program");
  }
}

}  // namespace egm
