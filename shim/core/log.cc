#include "shim/core/log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/syscall.h>
#include <unistd.h>

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

bool write_fully(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t written = ::write(fd, data, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    data += written;
    size -= static_cast<size_t>(written);
  }
  return true;
}

// Writes each formatted line with one write(2). For a file, the descriptor is
// opened on the first line, so processes that never log leave no file.
// The log file once open, for async-signal-safe writers (fatal signals).
std::atomic<int> open_file_descriptor{-1};

class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static std::shared_ptr<FdSink> for_stderr() {
    return std::make_shared<FdSink>(STDERR_FILENO, "");
  }
  static std::shared_ptr<FdSink> for_file(std::string path_template) {
    return std::make_shared<FdSink>(-1, std::move(path_template));
  }

  FdSink(int fd, std::string path_template) : fd_(fd), path_template_(std::move(path_template)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& message) override {
    if (fd_ < 0 && !open_failed_) open_file();
    spdlog::memory_buf_t line;
    formatter_->format(message, line);
    int fd = fd_ >= 0 ? fd_ : STDERR_FILENO;  // an unopenable file falls back to stderr
    write_fully(fd, line.data(), line.size());
  }
  void flush_() override {}

 private:
  void open_file() {
    std::string path = expand_path_template(path_template_, static_cast<long>(::getpid()));
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd_ >= 0) {
      open_file_descriptor.store(fd_, std::memory_order_release);
      return;
    }
    open_failed_ = true;
    std::string warning = "egm: cannot open EGM_LOG_FILE \"" + path +
                          "\": " + std::strerror(errno) + "; logging to stderr instead\n";
    write_fully(STDERR_FILENO, warning.data(), warning.size());
  }

  int fd_;
  std::string path_template_;
  bool open_failed_ = false;
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
  // a %p template, else the same file, appended to.
  open_file_descriptor.store(-1, std::memory_order_release);
  logger_ = make_logger();
}

int EventLog::file_descriptor() { return open_file_descriptor.load(std::memory_order_acquire); }

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
  std::string path;
  for (size_t i = 0; i < path_template.size(); ++i) {
    if (path_template[i] == '%' && i + 1 < path_template.size()) {
      char next = path_template[++i];
      if (next == 'p') {
        path += std::to_string(pid);
        continue;
      }
      if (next == '%') {
        path += '%';
        continue;
      }
      path += '%';
    }
    path += path_template[i];
  }
  return path;
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

bool write_file_atomically(const std::string& path, const std::string& text) {
  std::string temporary = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return false;
  bool written = write_fully(fd, text.data(), text.size());
  ::close(fd);
  if (written && ::rename(temporary.c_str(), path.c_str()) == 0) return true;
  ::unlink(temporary.c_str());
  return false;
}

}  // namespace egm
