#include "tools/inspect/log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace egm::inspect {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
constexpr std::array<std::string_view, 6> kKnownLevels = {"trace", "debug", "info",
                                                          "warn",  "error", "critical"};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// algorithm): timegm() would depend on the TZ machinery and is not constexpr.
constexpr int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto year_of_era = static_cast<unsigned>(year - era * 400);
  const unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + static_cast<int64_t>(day_of_era) - 719468;
}
static_assert(days_from_civil(1970, 1, 1) == 0);
static_assert(days_from_civil(2000, 3, 1) == 11017);

struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};

constexpr CivilDate civil_from_days(int64_t days) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto day_of_era = static_cast<unsigned>(days - era * 146097);
  const unsigned year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const unsigned day_of_year =
      day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const unsigned shifted_month = (5 * day_of_year + 2) / 153;
  const unsigned day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  const unsigned month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
  return {static_cast<int64_t>(year_of_era) + era * 400 + (month <= 2 ? 1 : 0), month, day};
}
static_assert(civil_from_days(11017).month == 3);

constexpr bool is_leap_year(int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

constexpr unsigned days_in_month(int64_t year, unsigned month) {
  constexpr std::array<unsigned, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[month - 1];
}

// `count` decimal digits at text[pos]; advances pos.
std::optional<unsigned> read_digits(std::string_view text, size_t& pos, size_t count) {
  if (pos + count > text.size()) return std::nullopt;
  unsigned value = 0;
  for (size_t end = pos + count; pos < end; ++pos) {
    if (text[pos] < '0' || text[pos] > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(text[pos] - '0');
  }
  return value;
}

bool expect_char(std::string_view text, size_t& pos, char wanted) {
  if (pos >= text.size() || text[pos] != wanted) return false;
  ++pos;
  return true;
}

// ".f" to ".fffffffff" as microseconds; digits past the sixth are dropped.
std::optional<int64_t> read_fraction_us(std::string_view text, size_t& pos) {
  if (pos >= text.size() || text[pos] != '.') return 0;
  ++pos;
  int64_t micros = 0;
  size_t digits = 0;
  for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos, ++digits) {
    if (digits < 6) micros = micros * 10 + (text[pos] - '0');
  }
  if (digits == 0 || digits > 9) return std::nullopt;
  for (size_t scale = digits; scale < 6; ++scale) micros *= 10;
  return micros;
}

// Shows a piece of a bad line inside a message: printable, and short.
std::string excerpt(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  std::string shown;
  for (char c : text.substr(0, kMaxShown)) {
    shown += (c >= ' ' && c < 0x7f) ? c : '?';
  }
  if (text.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

struct Field {
  std::string key;
  std::string value;
};

// The escapes the shim writes (shim/core/log.cc): \" \\ \n.
std::optional<char> unescape(char escaped) {
  switch (escaped) {
    case '"': return '"';
    case '\\': return '\\';
    case 'n': return '\n';
    default: return std::nullopt;
  }
}

// A "quoted" value starting at text[pos] (the opening quote); leaves pos
// after the closing quote.
std::optional<std::string> read_quoted(std::string_view text, size_t& pos, const std::string& key,
                                       std::string& error) {
  std::string value;
  for (++pos; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '"') {
      ++pos;
      if (pos < text.size() && text[pos] != ' ') {
        error = "text right after the closing quote of '" + key + "'";
        return std::nullopt;
      }
      return value;
    }
    if (c == '\\') {
      std::optional<char> plain = pos + 1 < text.size() ? unescape(text[++pos]) : std::nullopt;
      if (!plain) {
        error = "bad escape in the value of '" + key + "'";
        return std::nullopt;
      }
      c = *plain;
    }
    value += c;
  }
  error = "unterminated quoted value of '" + key + "' (line cut short?)";
  return std::nullopt;
}

// A bare value: up to the next space. The shim quotes anything with '"', so
// finding one here means the line is damaged. '=' is let through: settings
// such as numa_policy=weighted:0=3,1=1 are logged bare.
std::optional<std::string> read_bare(std::string_view text, size_t& pos, const std::string& key,
                                     std::string& error) {
  size_t end = std::min(text.find(' ', pos), text.size());
  std::string_view value = text.substr(pos, end - pos);
  pos = end;
  if (value.empty()) {
    error = "empty value for '" + key + "'";
    return std::nullopt;
  }
  if (value.find('"') != std::string_view::npos) {
    error = "stray '\"' in the value of '" + key + "': " + excerpt(value);
    return std::nullopt;
  }
  return std::string(value);
}

// `key=value` at text[pos]; leaves pos after it.
std::optional<Field> read_field(std::string_view text, size_t& pos, std::string& error) {
  size_t key_end = pos;
  while (key_end < text.size() && is_key_char(text[key_end])) ++key_end;
  if (key_end == pos || key_end >= text.size() || text[key_end] != '=') {
    size_t token_end = std::min(text.find(' ', pos), text.size());
    error = "not a key=value pair: " + excerpt(text.substr(pos, token_end - pos));
    return std::nullopt;
  }
  Field field{std::string(text.substr(pos, key_end - pos)), {}};
  pos = key_end + 1;
  bool quoted = pos < text.size() && text[pos] == '"';
  std::optional<std::string> value =
      quoted ? read_quoted(text, pos, field.key, error) : read_bare(text, pos, field.key, error);
  if (!value) return std::nullopt;
  field.value = std::move(*value);
  return field;
}

// Every key=value after the timestamp. A repeated key usually means two
// lines ran together (one cut short), so it is an error, not "last wins".
std::optional<Fields> read_fields(std::string_view text, size_t pos, std::string& error) {
  Fields fields;
  while (pos < text.size()) {
    if (text[pos] == ' ') {
      ++pos;
      continue;
    }
    std::optional<Field> field = read_field(text, pos, error);
    if (!field) return std::nullopt;
    if (!fields.emplace(field->key, std::move(field->value)).second) {
      error = "key '" + field->key + "' appears twice (two lines run together?)";
      return std::nullopt;
    }
  }
  return fields;
}

// Removes `key` from `fields` and returns its value; "" records an error.
std::string take_required(Fields& fields, const char* key, std::string& error) {
  auto found = fields.find(key);
  if (found == fields.end()) {
    if (error.empty()) error = std::string("missing key '") + key + "'";
    return {};
  }
  std::string value = std::move(found->second);
  fields.erase(found);
  return value;
}

bool is_known_level(std::string_view level) {
  return std::find(kKnownLevels.begin(), kKnownLevels.end(), level) != kKnownLevels.end();
}

// Moves pid, tid, level and event out of `fields` into `line`.
bool take_header(Fields& fields, LogLine& line, std::string& error) {
  std::string pid = take_required(fields, "pid", error);
  std::string tid = take_required(fields, "tid", error);
  line.level = take_required(fields, "level", error);
  line.event = take_required(fields, "event", error);
  if (!error.empty()) return false;
  std::optional<int64_t> pid_value = parse_signed(pid);
  std::optional<int64_t> tid_value = parse_signed(tid);
  if (!pid_value || *pid_value <= 0)
    error = "bad pid " + excerpt(pid);
  else if (!tid_value || *tid_value < 0)
    error = "bad tid " + excerpt(tid);
  else if (!is_known_level(line.level))
    error = "unknown level " + excerpt(line.level);
  if (!error.empty()) return false;
  line.pid = *pid_value;
  line.tid = *tid_value;
  return true;
}

ParsedLine failed(std::string error) { return ParsedLine{std::nullopt, std::move(error)}; }

void skip_line(LogSet& into, SourceLocation where, std::string why) {
  if (into.warnings.size() < kMaxWarnings) {
    into.warnings.push_back({std::move(where), std::move(why)});
  } else {
    ++into.warnings_not_kept;
  }
  ++into.lines_skipped;
}

// One line as read (newline removed): a good line, or a warning in `into`.
std::optional<LogLine> take_line(std::string_view text, bool cut_short, SourceLocation where,
                                 LogSet& into) {
  // The shim writes each line, newline included, with one write(2): a last
  // line without one was cut short, and its final value may be too.
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (text.empty()) return std::nullopt;  // blank lines carry nothing
  if (cut_short) {
    skip_line(into, std::move(where),
              "last line has no newline: cut short (program killed?); skipped");
    return std::nullopt;
  }
  ParsedLine parsed = parse_log_line(text);
  if (!parsed.line) {
    skip_line(into, std::move(where), parsed.error + "; skipped");
    return std::nullopt;
  }
  parsed.line->where = std::move(where);
  return std::move(parsed.line);
}

// Lines of one input through a fixed buffer: a line longer than the buffer
// is reported and skipped, never stored.
class LineReader {
 public:
  LineReader(int fd, std::string name) : fd_(fd), name_(std::move(name)), buffer_(kMaxLineBytes) {}
  ~LineReader() { ::close(fd_); }

  enum class Kind { kLine, kCutShort, kTooLong, kEnd };

  // The next line (valid until the next call) and its 1-based number.
  Kind next(std::string_view& text, size_t& number) {
    bool too_long = false;
    for (;;) {
      size_t newline = find_newline();
      if (newline != kNone) {
        text = std::string_view(buffer_.data() + begin_, newline - begin_);
        begin_ = newline + 1;
        number = ++line_number_;
        return too_long ? Kind::kTooLong : Kind::kLine;
      }
      if (begin_ == 0 && end_ == buffer_.size()) {  // no newline in a full buffer
        too_long = true;
        begin_ = end_ = 0;
      }
      if (!fill()) break;
    }
    if (end_ == begin_ && !too_long) return Kind::kEnd;
    text = std::string_view(buffer_.data() + begin_, end_ - begin_);
    begin_ = end_;
    number = ++line_number_;
    return too_long ? Kind::kTooLong : Kind::kCutShort;
  }

 private:
  static constexpr size_t kNone = SIZE_MAX;

  size_t find_newline() const {
    const void* found = std::memchr(buffer_.data() + begin_, '\n', end_ - begin_);
    return found ? static_cast<size_t>(static_cast<const char*>(found) - buffer_.data()) : kNone;
  }

  // Reads more after what is left; false at the end of the input.
  bool fill() {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    for (;;) {
      ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw std::runtime_error("cannot read '" + name_ + "': " + std::strerror(errno));
      end_ += static_cast<size_t>(got);
      return got > 0;
    }
  }

  int fd_;
  std::string name_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t line_number_ = 0;
};

// Opens an input egm-inspect may read to its end in bounded memory.
int open_log(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat status {};
  if (::fstat(fd, &status) != 0 || S_ISDIR(status.st_mode) || S_ISCHR(status.st_mode) ||
      S_ISBLK(status.st_mode)) {
    ::close(fd);
    throw std::runtime_error("cannot read '" + path +
                             "': not a log file (a directory or a device); give a regular "
                             "file, a FIFO or a pipe");
  }
  return fd;
}

}  // namespace

std::string describe(const Warning& warning) {
  if (warning.where.file.empty()) return warning.message;
  return warning.where.file + ":" + std::to_string(warning.where.line) + ": " + warning.message;
}

std::optional<int64_t> parse_timestamp(std::string_view text) {
  size_t pos = 0;
  auto year = read_digits(text, pos, 4);
  bool dash1 = expect_char(text, pos, '-');
  auto month = read_digits(text, pos, 2);
  bool dash2 = expect_char(text, pos, '-');
  auto day = read_digits(text, pos, 2);
  bool tee = expect_char(text, pos, 'T');
  auto hour = read_digits(text, pos, 2);
  bool colon1 = expect_char(text, pos, ':');
  auto minute = read_digits(text, pos, 2);
  bool colon2 = expect_char(text, pos, ':');
  auto second = read_digits(text, pos, 2);
  if (!year || !month || !day || !hour || !minute || !second) return std::nullopt;
  if (!dash1 || !dash2 || !tee || !colon1 || !colon2) return std::nullopt;
  std::optional<int64_t> fraction_us = read_fraction_us(text, pos);
  if (!fraction_us || !expect_char(text, pos, 'Z') || pos != text.size()) return std::nullopt;
  if (*month < 1 || *month > 12 || *day < 1 || *day > days_in_month(*year, *month)) {
    return std::nullopt;
  }
  if (*hour > 23 || *minute > 59 || *second > 60) return std::nullopt;  // 60: leap second
  int64_t seconds =
      days_from_civil(*year, *month, *day) * 86'400 + *hour * 3600 + *minute * 60 + *second;
  return seconds * kMicrosPerSecond + *fraction_us;
}

std::string format_timestamp(int64_t timestamp_us) {
  int64_t days = timestamp_us / kMicrosPerDay;
  int64_t of_day = timestamp_us % kMicrosPerDay;
  if (of_day < 0) {  // floor, not truncation, before 1970
    of_day += kMicrosPerDay;
    --days;
  }
  CivilDate date = civil_from_days(days);
  int64_t seconds = of_day / kMicrosPerSecond;
  char text[40];
  std::snprintf(text, sizeof text, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ",
                static_cast<long long>(date.year), date.month, date.day,
                static_cast<long long>(seconds / 3600), static_cast<long long>(seconds / 60 % 60),
                static_cast<long long>(seconds % 60),
                static_cast<long long>(of_day % kMicrosPerSecond));
  return text;
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, status] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || status != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::optional<int64_t> parse_signed(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, status] = std::from_chars(text.data(), end, value);
  if (text.empty() || status != std::errc() || stop != end) return std::nullopt;
  return value;
}

ParsedLine parse_log_line(std::string_view text) {
  size_t stamp_end = std::min(text.find(' '), text.size());
  std::string_view stamp = text.substr(0, stamp_end);
  std::optional<int64_t> timestamp = parse_timestamp(stamp);
  if (!timestamp) return failed("no valid timestamp at the start: " + excerpt(stamp));
  std::string error;
  std::optional<Fields> fields = read_fields(text, stamp_end, error);
  if (!fields) return failed(std::move(error));
  LogLine line;
  line.timestamp_us = *timestamp;
  if (!take_header(*fields, line, error)) return failed(std::move(error));
  line.fields = std::move(*fields);
  return ParsedLine{std::move(line), {}};
}

void read_log_stream(std::istream& stream, const std::string& name, LogSet& into) {
  std::string text;
  size_t number = 0;
  while (std::getline(stream, text)) {
    ++number;
    std::optional<LogLine> line = take_line(text, stream.eof(), {name, number}, into);
    if (line) into.lines.push_back(std::move(*line));
  }
}

void merge_by_timestamp(LogSet& logs) {
  std::stable_sort(logs.lines.begin(), logs.lines.end(), [](const LogLine& a, const LogLine& b) {
    return a.timestamp_us < b.timestamp_us;
  });
}

LogSet read_log_files(const std::vector<std::string>& paths) {
  MergedLogReader reader(paths);
  LogSet logs;
  LogLine line;
  while (reader.next(line)) logs.lines.push_back(std::move(line));
  logs.files = reader.files();
  logs.warnings = std::move(reader.skipped().warnings);
  logs.warnings_not_kept = reader.skipped().warnings_not_kept;
  logs.lines_skipped = reader.skipped().lines_skipped;
  return logs;
}

// One file's lines, the next kReorderWindow of them sorted by (time, order read).
struct MergedLogReader::Source {
  Source(int fd, const std::string& path) : lines(fd, path), name(path) {}

  // Tops the window up; `skipped` collects the bad lines.
  void fill(LogSet& skipped) {
    std::string_view text;
    size_t number = 0;
    while (!ended && window.size() < kReorderWindow) {
      LineReader::Kind kind = lines.next(text, number);
      if (kind == LineReader::Kind::kEnd) {
        ended = true;
      } else if (kind == LineReader::Kind::kTooLong) {
        skip_line(skipped, {name, number},
                  "line longer than " + std::to_string(kMaxLineBytes >> 20) +
                      " MiB (not a log?); skipped");
      } else {
        std::optional<LogLine> line =
            take_line(text, kind == LineReader::Kind::kCutShort, {name, number}, skipped);
        if (line) {
          int64_t time = line->timestamp_us;
          window.emplace(std::make_pair(time, read_count++), std::move(*line));
        }
      }
    }
  }

  LineReader lines;
  std::string name;
  std::map<std::pair<int64_t, uint64_t>, LogLine> window;
  uint64_t read_count = 0;
  bool ended = false;
};

MergedLogReader::MergedLogReader(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    int fd = open_log(path);
    sources_.push_back(std::make_unique<Source>(fd, path));
    files_.push_back(path);
  }
}

MergedLogReader::~MergedLogReader() = default;

// The source whose next line is earliest; ties go to the file given first.
MergedLogReader::Source* MergedLogReader::earliest() {
  Source* best = nullptr;
  for (const std::unique_ptr<Source>& source : sources_) {
    source->fill(skipped_);
    if (source->window.empty()) continue;
    if (best == nullptr ||
        source->window.begin()->first.first < best->window.begin()->first.first) {
      best = source.get();
    }
  }
  return best;
}

bool MergedLogReader::next(LogLine& line) {
  Source* source = earliest();
  if (source == nullptr) return false;
  auto first = source->window.begin();
  line = std::move(first->second);
  source->window.erase(first);
  return true;
}

std::optional<int64_t> MergedLogReader::first_timestamp() {
  Source* source = earliest();
  if (source == nullptr) return std::nullopt;
  return source->window.begin()->first.first;
}

}  // namespace egm::inspect
