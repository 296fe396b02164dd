#include "tests/gpu/egm_log_reader.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace egm_test {
namespace {

// Reads a "quoted" value starting at line[pos] (the opening quote); leaves pos
// after the closing quote.
std::string read_quoted(std::string_view line, size_t& pos) {
  std::string value;
  for (++pos; pos < line.size() && line[pos] != '"'; ++pos) {
    if (line[pos] == '\\' && pos + 1 < line.size()) {
      char escaped = line[++pos];
      value += escaped == 'n' ? '\n' : escaped;
      continue;
    }
    value += line[pos];
  }
  if (pos < line.size()) ++pos;  // the closing quote
  return value;
}

std::string read_bare(std::string_view line, size_t& pos) {
  size_t end = line.find(' ', pos);
  if (end == std::string_view::npos) end = line.size();
  std::string value(line.substr(pos, end - pos));
  pos = end;
  return value;
}

}  // namespace

LogFields parse_logfmt_line(std::string_view line) {
  LogFields fields;
  size_t pos = 0;
  while (pos < line.size()) {
    if (line[pos] == ' ') { ++pos; continue; }
    size_t token_end = line.find_first_of(" =", pos);
    if (token_end == std::string_view::npos || line[token_end] == ' ') {
      pos = token_end == std::string_view::npos ? line.size() : token_end;  // no '=': timestamp
      continue;
    }
    std::string key(line.substr(pos, token_end - pos));
    pos = token_end + 1;
    bool quoted = pos < line.size() && line[pos] == '"';
    fields[key] = quoted ? read_quoted(line, pos) : read_bare(line, pos);
  }
  return fields;
}

std::string expand_pid_template(std::string_view path_template, long pid) {
  std::string path;
  for (size_t i = 0; i < path_template.size(); ++i) {
    if (path_template[i] == '%' && i + 1 < path_template.size()) {
      char next = path_template[i + 1];
      if (next == 'p') { path += std::to_string(pid); ++i; continue; }
      if (next == '%') { path += '%'; ++i; continue; }
    }
    path += path_template[i];
  }
  return path;
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
  bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  std::string digits(hex ? text.substr(2) : text);
  if (digits.empty() || digits[0] == '-' || digits[0] == '+' || digits[0] == ' ') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(digits.c_str(), &end, hex ? 16 : 10);
  if (errno != 0 || *end != '\0') return std::nullopt;
  return value;
}

std::vector<LogFields> read_log_events(const std::string& path) {
  std::vector<LogFields> events;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) events.push_back(parse_logfmt_line(line));
  return events;
}

bool matches(const LogFields& fields, const EventQuery& query) {
  auto value_of = [&fields](const char* key) -> std::optional<std::string> {
    auto it = fields.find(key);
    if (it == fields.end()) return std::nullopt;
    return it->second;
  };
  if (value_of("event") != query.event) return false;
  std::optional<std::string> addr = value_of("addr");
  if (!addr || parse_unsigned(*addr) != query.addr) return false;
  if (query.api && value_of("api") != query.api) return false;
  if (query.id && value_of("id") != query.id) return false;
  if (query.requested) {
    std::optional<std::string> requested = value_of("requested");
    if (!requested || parse_unsigned(*requested) != query.requested) return false;
  }
  return true;
}

std::optional<size_t> find_event(const std::vector<LogFields>& events, size_t first,
                                 const EventQuery& query) {
  for (size_t i = first; i < events.size(); ++i) {
    if (matches(events[i], query)) return i;
  }
  return std::nullopt;
}

std::optional<LogFields> wait_for_event(const std::string& path, size_t first,
                                        const EventQuery& query,
                                        std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<LogFields> events = read_log_events(path);
    if (std::optional<size_t> found = find_event(events, first, query)) return events[*found];
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string describe(const LogFields& fields) {
  std::string text;
  for (const auto& [key, value] : fields) {
    if (!text.empty()) text += ' ';
    text += key + '=' + value;
  }
  return text;
}

}  // namespace egm_test
