// The shim's log: one logfmt event per line (format in docs/DESIGN.md),
// written with one write(2) per line so nothing is buffered when a program
// dies. A file is opened only when the first line is due.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

#include "config/values.h"
#include "shim/core/log_identity.h"

namespace egm {

struct LogSettings {
  std::string file_template;  // "" = no file; %p = pid, %r = rank, %h = host
  LogLevel file_level = LogLevel::kInfo;
  LogLevel stderr_level = LogLevel::kWarn;
};

class EventLog {
 public:
  explicit EventLog(const LogSettings& settings);

  // `fields` is the rest of the line after "event=NAME", already formatted.
  void write(LogLevel level, std::string_view event, std::string_view fields);
  bool enabled(LogLevel level) const;

  // In a child after fork(): fresh sinks (the parent's locks may be held
  // forever there) and, for a %p template, the child's own file.
  void restart_after_fork();

  // The open log file's descriptor, or -1 (also when the program closed or
  // reused it): for async-signal-safe writes.
  static int file_descriptor();
  // One write that never raises SIGPIPE; 0 or errno. Async-signal-safe.
  static int write_line_quietly(int fd, const char* text, size_t size);

 private:
  std::shared_ptr<spdlog::logger> make_logger() const;

  LogSettings settings_;
  std::shared_ptr<spdlog::logger> logger_;
};

// One line in the log's format (with its newline), for files other than the
// log itself (the live view).
std::string log_line(LogLevel level, std::string_view event, std::string_view fields);

// Writes `text` to a temporary file beside `path` and renames it into place,
// so that a reader never sees half a snapshot. Mode 0640 unless given (the
// metrics file is 0644: a scraper runs as another user), no symlinks.
bool write_file_atomically(const std::string& path, const std::string& text,
                           unsigned mode = 0640);

// `value` as a logfmt value: bare when safe, else double-quoted with escapes.
std::string logfmt_value(std::string_view value);

// The path with %p replaced by `pid`, %r and %h by this process's rank and
// host (log_identity.h), %% by %.
std::string expand_path_template(std::string_view path_template, long pid);

}  // namespace egm
