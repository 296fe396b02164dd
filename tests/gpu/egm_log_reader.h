// Reads egm-shim's event log (docs/DESIGN.md, "Log format") so that a test can
// check which of its allocations the shim redirected.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace egm_test {

// One log line's key=value fields; the leading timestamp (no '=') is dropped.
using LogFields = std::map<std::string, std::string>;

// Parses a logfmt line: bare values, or "quoted" ones with \" \\ \n escapes.
LogFields parse_logfmt_line(std::string_view line);

// The shim's EGM_LOG_FILE rule: %p becomes the pid, %% a single %.
std::string expand_pid_template(std::string_view path_template, long pid);

// "0x1f" (hex) or "31" (decimal); nullopt for anything else.
std::optional<uint64_t> parse_unsigned(std::string_view text);

// Every line of the file, parsed; empty when the file does not exist (yet).
std::vector<LogFields> read_log_events(const std::string& path);

// What a wanted line must say. Unset optionals match anything.
struct EventQuery {
  std::string event;               // "map", "unmap", ...
  uint64_t addr = 0;               // compared as a number, not as text
  std::optional<std::string> api;  // "cudaMalloc", "cudaMallocManaged"
  std::optional<uint64_t> requested;
  std::optional<std::string> id;   // ties an unmap to its map line
};

bool matches(const LogFields& fields, const EventQuery& query);

// Index of the first event at or after `first` that matches, or nullopt.
std::optional<size_t> find_event(const std::vector<LogFields>& events, size_t first,
                                 const EventQuery& query);

// Re-reads `path` until a matching event at or after line `first` appears or
// `timeout` passes (the shim writes each line with one write(2), but a reader
// should not depend on exact timing). Returns the matching line's fields.
std::optional<LogFields> wait_for_event(const std::string& path, size_t first,
                                        const EventQuery& query,
                                        std::chrono::milliseconds timeout);

// Renders fields back as `k=v ...` for failure messages.
std::string describe(const LogFields& fields);

}  // namespace egm_test
