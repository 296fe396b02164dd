// The shim's log: one logfmt event per line (format in docs/DESIGN.md),
// written with one write(2) per line so nothing is buffered when a program
// dies. A file is opened only when the first line is due.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

#include "config/values.h"

namespace egm {

struct LogSettings {
  std::string file_template;  // "" = no file; %p = pid
  LogLevel file_level = LogLevel::kInfo;
  LogLevel stderr_level = LogLevel::kWarn;
};

class EventLog {
 public:
  explicit EventLog(const LogSettings& settings);

  // `fields` is the rest of the line after "event=NAME", already formatted.
  void write(LogLevel level, std::string_view event, std::string_view fields);
  bool enabled(LogLevel level) const;

 private:
  std::shared_ptr<spdlog::logger> logger_;
};

// `value` as a logfmt value: bare when safe, else double-quoted with escapes.
std::string logfmt_value(std::string_view value);

// The path with %p replaced by `pid` and %% by %.
std::string expand_path_template(std::string_view path_template, long pid);

}  // namespace egm
