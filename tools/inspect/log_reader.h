// Reads egm-shim event logs (docs/DESIGN.md, "Log format") for egm-inspect.
// Tolerant by design: logs come from programs that may have been killed
// mid-line, so a bad line becomes a warning with file:line and is skipped.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace egm_inspect {

// Where a line came from, so a person can open the file at that line.
struct SourceLocation {
  std::string file;
  size_t line = 0;  // 1-based
};

struct Warning {
  SourceLocation where;
  std::string message;
};

// "file:line: message", the form editors and terminals recognise.
std::string describe(const Warning& warning);

using Fields = std::map<std::string, std::string>;

struct LogLine {
  int64_t timestamp_us = 0;  // microseconds since the Unix epoch (UTC)
  int64_t pid = 0;
  int64_t tid = 0;
  std::string level;
  std::string event;
  Fields fields;  // every key=value except pid, tid, level and event
  SourceLocation where;
};

// Either a line or the reason it could not be read.
struct ParsedLine {
  std::optional<LogLine> line;
  std::string error;
};

// Parses one line (without its newline); `where` is left empty.
ParsedLine parse_log_line(std::string_view text);

// "YYYY-MM-DDTHH:MM:SS[.ffffff]Z" (UTC) to microseconds since the epoch.
std::optional<int64_t> parse_timestamp(std::string_view text);
// The log's own form, always with six fractional digits.
std::string format_timestamp(int64_t timestamp_us);

// Whole-string numbers: "0x..." hex or decimal. nullopt on any stray char.
std::optional<uint64_t> parse_unsigned(std::string_view text);
// Decimal, optionally negative (node=-1 in fallback lines).
std::optional<int64_t> parse_signed(std::string_view text);

// The lines of several logs, merged by timestamp, and what was skipped.
struct LogSet {
  std::vector<std::string> files;
  std::vector<LogLine> lines;
  std::vector<Warning> warnings;
  size_t lines_skipped = 0;
};

// Appends the stream's good lines (in file order) and warnings to `into`.
void read_log_stream(std::istream& stream, const std::string& name, LogSet& into);

// Orders lines by timestamp; ties keep their reading order (file order given
// on the command line, then line order), so one process's lines never swap.
void merge_by_timestamp(LogSet& logs);

// Reads every file and merges them. Throws std::runtime_error naming the file
// when one cannot be opened: a missing input is a usage problem, not a warning.
LogSet read_log_files(const std::vector<std::string>& paths);

}  // namespace egm_inspect
