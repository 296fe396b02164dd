#include "shim/core/log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

namespace egm {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return spdlog::level::trace;
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

// Writes all of `data` with SIGPIPE blocked for the calling thread, so that
// a reader that went away (a FIFO, a closed stderr pipe) never raises a
// signal in the program: a SIGPIPE the write raised is consumed, one that was
// pending before is left for the program. Returns 0 or the errno of the
// failure. Async-signal-safe (the fatal-signal line uses it).
int write_quietly(int fd, const char* data, size_t size) {
  int saved_errno = errno;
  sigset_t pipe_only, previous, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
  bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  int error = 0;
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      error = written < 0 ? errno : EIO;
      break;
    }
    data += written;
    size -= static_cast<size_t>(written);
  }
  if (error == EPIPE && !was_pending) {
    timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  errno = saved_errno;
  return error;
}

bool write_fully(int fd, const char* data, size_t size) {
  return write_quietly(fd, data, size) == 0;
}

void warn_on_stderr(const std::string& text) {
  std::string line = "egm: " + text + "\n";
  write_quietly(STDERR_FILENO, line.data(), line.size());
}

// The log file once open, for async-signal-safe writers (fatal signals), and
// what it is: a descriptor the program closed and reused names another file.
std::atomic<int> open_file_descriptor{-1};
std::atomic<dev_t> open_file_device{0};
std::atomic<ino_t> open_file_inode{0};

bool is_same_file(int fd, dev_t device, ino_t inode) {
  struct stat status {};
  return fstat(fd, &status) == 0 && status.st_dev == device && status.st_ino == inode;
}

// Programs that close "every descriptor but 0-2" and open their own files
// reuse low numbers first: the log's descriptor moves near the top of the
// usual range (the identity check before each line covers the rest).
int move_out_of_the_way(int fd) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return fd;
  rlim_t ceiling = std::min<rlim_t>(limit.rlim_cur, 4096);
  if (ceiling < 256) return fd;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, static_cast<int>(ceiling - 64));
  if (high < 0) return fd;
  ::close(fd);
  return high;
}

// Writes each formatted line with one write(2). For a file, the descriptor is
// opened on the first line, so processes that never log leave no file.
//
// A file sink writes only into the file it opened: before each line it checks
// that its descriptor still names that file, and reopens the path (one
// warning on stderr) when the program closed or reused it. A file that
// cannot be written (a full disk, /dev/full, a FIFO whose reader left) costs
// one warning on stderr, then the file gets no more lines. A FIFO is opened
// only when a reader has it open (never waits for one); a reader that stops
// reading without closing stalls the writer, as any pipe does.
// The stderr sink stops when stderr cannot be written (a closed pipe), with
// one warning in the log file, if any.
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static std::shared_ptr<FdSink> for_stderr() {
    return std::make_shared<FdSink>(STDERR_FILENO, "");
  }
  static std::shared_ptr<FdSink> for_file(std::string path_template) {
    return std::make_shared<FdSink>(-1, std::move(path_template));
  }

  FdSink(int fd, std::string path_template)
      : fd_(fd), is_file_(!path_template.empty()), path_template_(std::move(path_template)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    if (stopped_) return;
    spdlog::memory_buf_t line;
    formatter_->format(message, line);
    if (!is_file_) {
      write_to_stderr(line.data(), line.size());
      return;
    }
    if (fd_ < 0 && !open_failed_) open_file();
    if (fd_ >= 0 && !is_same_file(fd_, device_, inode_)) reopen_after_takeover();
    if (fd_ < 0) {
      if (open_failed_) write_to_stderr(line.data(), line.size());  // the open failure's fallback
      return;
    }
    int error = write_quietly(fd_, line.data(), line.size());
    if (error == EBADF) {  // closed since the check
      reopen_after_takeover();
      if (fd_ >= 0) error = write_quietly(fd_, line.data(), line.size());
    }
    if (error != 0 && fd_ >= 0) stop_file(error);
  }
  void flush_() override {}

 private:
  void write_to_stderr(const char* data, size_t size) {
    if (stderr_gone_) return;
    int error = write_quietly(STDERR_FILENO, data, size);
    if (error == 0) return;
    stderr_gone_ = true;
    if (!is_file_) stopped_ = true;
    int log_fd = open_file_descriptor.load(std::memory_order_acquire);
    if (error == EPIPE && log_fd >= 0 &&
        is_same_file(log_fd, open_file_device.load(), open_file_inode.load())) {
      std::string warning =
          log_line(LogLevel::kWarn, "notice",
                   "message=" + logfmt_value("stderr is a closed pipe: the shim's lines for "
                                             "stderr are dropped from now on"));
      write_quietly(log_fd, warning.data(), warning.size());
    }
  }

  void open_file() {
    path_ = expand_path_template(path_template_, static_cast<long>(::getpid()));
    // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking.
    int fd = ::open(path_.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0640);
    struct stat status {};
    if (fd >= 0 && fstat(fd, &status) != 0) {
      ::close(fd);
      fd = -1;
    }
    if (fd < 0) {
      open_failed_ = true;
      std::string reason = errno == ENXIO ? "a FIFO that no process reads" : std::strerror(errno);
      warn_on_stderr("cannot open EGM_LOG_FILE \"" + path_ + "\": " + reason +
                     "; logging to stderr instead");
      return;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);  // no line lost to a full pipe
    fd_ = move_out_of_the_way(fd);
    device_ = status.st_dev;
    inode_ = status.st_ino;
    open_file_device.store(device_);
    open_file_inode.store(inode_);
    open_file_descriptor.store(fd_, std::memory_order_release);
  }

  // The program closed the descriptor, or reused its number for its own
  // file: that number is not the shim's any more (never written, never closed).
  void reopen_after_takeover() {
    fd_ = -1;
    open_file_descriptor.store(-1, std::memory_order_release);
    if (!takeover_warned_) {
      takeover_warned_ = true;
      warn_on_stderr("the program closed or reused the descriptor of EGM_LOG_FILE \"" + path_ +
                     "\"; reopening it");
    }
    open_file();
    // No file: the lines of a program that closes descriptors stay out of its files.
    if (fd_ < 0) stopped_ = true;
  }

  void stop_file(int error) {
    stopped_ = true;
    open_file_descriptor.store(-1, std::memory_order_release);
    warn_on_stderr("cannot write to EGM_LOG_FILE \"" + path_ + "\": " + std::strerror(error) +
                   "; no more lines go there");
  }

  int fd_;
  const bool is_file_;
  std::string path_template_;
  std::string path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  bool open_failed_ = false;
  bool takeover_warned_ = false;
  bool stderr_gone_ = false;
  bool stopped_ = false;
};

constexpr const char* kLinePrefix = "%Y-%m-%dT%H:%M:%S.%fZ pid=%P %v";

void add_sink(std::vector<spdlog::sink_ptr>& sinks, spdlog::sink_ptr sink, LogLevel level) {
  sink->set_level(to_spdlog(level));
  sink->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(kLinePrefix, spdlog::pattern_time_type::utc));
  sinks.push_back(std::move(sink));
}

bool is_bare_logfmt(std::string_view value) {
  if (value.empty()) return false;
  for (char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

EventLog::EventLog(const LogSettings& settings) : settings_(settings), logger_(make_logger()) {}

std::shared_ptr<spdlog::logger> EventLog::make_logger() const {
  std::vector<spdlog::sink_ptr> sinks;
  add_sink(sinks, FdSink::for_stderr(), settings_.stderr_level);
  if (!settings_.file_template.empty()) {
    add_sink(sinks, FdSink::for_file(settings_.file_template), settings_.file_level);
  }
  auto logger = std::make_shared<spdlog::logger>("egm", sinks.begin(), sinks.end());
  LogLevel lowest = settings_.file_template.empty()
                        ? settings_.stderr_level
                        : std::min(settings_.file_level, settings_.stderr_level);
  logger->set_level(to_spdlog(lowest));
  return logger;
}

void EventLog::restart_after_fork() {
  // The parent's logger is never destroyed: its mutexes may be locked in the
  // child. It stays reachable from a static, so leak checkers do not report
  // it, and is never freed (a child's child abandons its parent's too).
  static auto* abandoned = new std::vector<std::shared_ptr<spdlog::logger>>();
  abandoned->push_back(std::move(logger_));
  // The new file sink opens its file on its first line: the child's own for
  // a %p template, else the same file, appended to. The parent's descriptor
  // is closed (if it still is the log's), not left to the child's programs.
  int inherited = open_file_descriptor.exchange(-1, std::memory_order_acq_rel);
  if (inherited >= 0 && is_same_file(inherited, open_file_device.load(), open_file_inode.load())) {
    ::close(inherited);
  }
  logger_ = make_logger();
}

int EventLog::file_descriptor() {
  int fd = open_file_descriptor.load(std::memory_order_acquire);
  return fd >= 0 && is_same_file(fd, open_file_device.load(), open_file_inode.load()) ? fd : -1;
}

int EventLog::write_line_quietly(int fd, const char* text, size_t size) {
  return write_quietly(fd, text, size);
}

bool EventLog::enabled(LogLevel level) const { return logger_->should_log(to_spdlog(level)); }

void EventLog::write(LogLevel level, std::string_view event, std::string_view fields) {
  if (!enabled(level)) return;
  std::string_view name = level == LogLevel::kWarn ? "warn" : log_level_name(level);
  logger_->log(to_spdlog(level), "tid={} level={} event={}{}{}", ::syscall(SYS_gettid), name, event,
               fields.empty() ? "" : " ", fields);
}

std::string logfmt_value(std::string_view value) {
  if (is_bare_logfmt(value)) return std::string(value);
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (c == '\n') {
      quoted += "\\n";
      continue;
    }
    quoted += c;
  }
  return quoted + '"';
}

std::string expand_path_template(std::string_view path_template, long pid) {
  PathFields fields = path_fields_of_this_process();
  fields.pid = pid;
  return expand_path_template(path_template, fields);
}

}  // namespace egm

namespace egm {

std::string log_line(LogLevel level, std::string_view event, std::string_view fields) {
  using namespace std::chrono;
  int64_t micros = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  time_t seconds = static_cast<time_t>(micros / 1000000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format(
      "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z pid={} tid={} level={} event={}{}{}\n",
      utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
      micros % 1000000, ::getpid(), ::syscall(SYS_gettid), log_level_name(level), event,
      fields.empty() ? "" : " ", fields);
}

bool write_file_atomically(const std::string& path, const std::string& text, unsigned mode) {
  // rename() would replace whatever the name is: a FIFO a reader waits on,
  // or (run as root) /dev/null itself. Only a regular file, a symbolic link
  // (the link is replaced, never its target) or no file at all is replaced.
  struct stat target {};
  if (::lstat(path.c_str(), &target) == 0 && !S_ISREG(target.st_mode) &&
      !S_ISLNK(target.st_mode)) {
    return false;
  }
  std::string temporary = path + ".tmp." + std::to_string(::getpid());
  // O_NONBLOCK: a FIFO planted at the temporary name fails instead of blocking.
  int fd = ::open(temporary.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, mode);
  if (fd < 0) return false;
  struct stat written_to {};
  if (::fstat(fd, &written_to) != 0 || !S_ISREG(written_to.st_mode)) {
    ::close(fd);
    return false;
  }
  bool written = write_fully(fd, text.data(), text.size());
  ::close(fd);
  if (written && ::rename(temporary.c_str(), path.c_str()) == 0) return true;
  ::unlink(temporary.c_str());
  return false;
}

}  // namespace egm
