// Reads egm-shim event logs (docs/DESIGN.md, "Log format") for egm-inspect.
// Tolerant by design: logs come from programs that may have been killed
// mid-line, so a bad line becomes a warning with file:line and is skipped.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace egm::inspect {

// Where a line came from, so a person can open the file at that line.
struct SourceLocation {
  std::string file;
  size_t line = 0;  // 1-based
};

struct Warning {
  SourceLocation where;
  std::string message;
};

// "file:line: message", the form editors and terminals recognise (just the
// message when `where.file` is empty: a count of warnings not kept).
std::string describe(const Warning& warning);

// The longest line read: a longer one is skipped with a warning, so that
// memory never depends on the input (a damaged or foreign file).
inline constexpr size_t kMaxLineBytes = size_t{1} << 20;
// Warnings kept of the reader's and of the replay's each; the rest are counted.
inline constexpr size_t kMaxWarnings = 1000;

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
  std::vector<Warning> warnings;  // at most kMaxWarnings
  size_t warnings_not_kept = 0;
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

// Several logs as one stream of lines in timestamp order, read once, front to
// back: memory is a window of lines per file, not the files. Within a file a
// line may come up to kReorderWindow lines late (threads racing to write) and
// still take its place, so the order is that of merge_by_timestamp. Inputs
// are regular files, FIFOs or pipes; a device or a directory is refused.
class MergedLogReader {
 public:
  static constexpr size_t kReorderWindow = 256;

  // Opens every file; throws std::runtime_error naming one that cannot be read.
  explicit MergedLogReader(const std::vector<std::string>& paths);
  ~MergedLogReader();
  MergedLogReader(const MergedLogReader&) = delete;
  MergedLogReader& operator=(const MergedLogReader&) = delete;

  // Moves the next line by time into `line`; false at the end.
  bool next(LogLine& line);
  // The first line's time, without taking it; nullopt when there are no lines.
  std::optional<int64_t> first_timestamp();

  const std::vector<std::string>& files() const { return files_; }
  // The bad lines met so far: at most kMaxWarnings kept, the rest counted.
  LogSet& skipped() { return skipped_; }

 private:
  struct Source;
  Source* earliest();

  std::vector<std::string> files_;
  std::vector<std::unique_ptr<Source>> sources_;
  LogSet skipped_;  // warnings and counts only; no lines
};

}  // namespace egm::inspect
