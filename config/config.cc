#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "config/options.h"

extern char** environ;

namespace egm {
namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_option_name(std::string_view name) {
  std::string_view best;
  size_t best_distance = SIZE_MAX;
  for (const OptionSpec& spec : kOptions) {
    size_t distance = edit_distance(name, spec.name);
    if (distance < best_distance) best_distance = distance, best = spec.name;
  }
  return std::string(best);
}

struct Setting {
  std::string name;
  std::string value;
  std::string source;  // "" = environment
};

constexpr size_t kMaxConfigFileBytes = size_t{1} << 20;
constexpr size_t kMaxShownValueBytes = 80;
constexpr size_t kMaxShownNameBytes = 64;
constexpr size_t kMaxShownPathBytes = 200;
constexpr size_t kMaxShownProblems = 10;  // errors, and warnings, each

constexpr std::string_view kBlanks = " \t\r";

std::string_view trimmed(std::string_view text) {
  size_t begin = text.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kBlanks) - begin + 1);
}

// '#' starts a comment at the start of a line or after a blank, so that
// "EGM_MODE=spill  # why" works and a path such as /tmp/a#b is kept.
std::string_view without_comment(std::string_view line) {
  for (size_t at = line.find('#'); at != std::string_view::npos; at = line.find('#', at + 1)) {
    if (at == 0 || line[at - 1] == ' ' || line[at - 1] == '\t') return line.substr(0, at);
  }
  return line;
}

bool is_variable_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Keeps the first kMaxShownProblems errors and counts the rest, so that a
// file of 100 000 bad lines gives a dozen lines, not 100 000.
void add_error(ParsedConfig& result, ConfigError error) {
  if (result.errors.size() < kMaxShownProblems) {
    result.errors.push_back(std::move(error));
  } else {
    ++result.errors_not_shown;
  }
}

void add_warning(ParsedConfig& result, std::string warning) {
  if (result.warnings.size() < kMaxShownProblems) {
    result.warnings.push_back(std::move(warning));
  } else {
    ++result.warnings_not_shown;
  }
}

// "NAME=value" lines; blank lines and '#' comments are skipped; blanks around
// the name and the value, a UTF-8 byte-order mark and CRLF line ends are
// allowed. A line that is not NAME=value is reported by its number only: the
// file may be something else entirely (EGM_CONFIG=/etc/shadow), whose lines
// must not be copied into a log.
std::vector<Setting> settings_of_file(std::string_view text, const std::string& file_name,
                                      ParsedConfig& line_errors) {
  std::vector<Setting> settings;
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (text.substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    text.remove_prefix(kByteOrderMark.size());
  }
  std::string shown_name = printable_excerpt(file_name, kMaxShownPathBytes);
  for (size_t number = 1; !text.empty(); ++number) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    std::string_view content = trimmed(without_comment(line));
    if (content.empty()) continue;
    std::string source = shown_name + ":" + std::to_string(number);
    size_t equals = content.find('=');
    std::string_view name = trimmed(content.substr(0, equals));
    if (equals == std::string_view::npos || !is_variable_name(name)) {
      add_error(line_errors,
                {"EGM_CONFIG", "", "VARIABLE=value lines",
                 "the line is not VARIABLE=value (its text is not shown)", source, false});
      continue;
    }
    settings.push_back(
        {std::string(name), std::string(trimmed(content.substr(equals + 1))), source});
  }
  return settings;
}

void apply(const Setting& setting, const HostTopology& topology, ParsedConfig& result) {
  const OptionSpec* spec = find_option(setting.name);
  // EGM_ variables other programs read (the egm Python package): not the shim's.
  if (spec == nullptr && setting.name == "EGM_LIB") return;
  std::string where = setting.source.empty() ? "" : " (" + setting.source + ")";
  if (spec == nullptr) {
    // The edit distance costs name length x option length: long names get no suggestion.
    std::string suggestion = setting.name.size() <= kMaxShownNameBytes
                                 ? "; did you mean " + closest_option_name(setting.name) + "?"
                                 : "";
    add_warning(result, "unknown variable " + printable_excerpt(setting.name, kMaxShownNameBytes) +
                            where + " is ignored" + suggestion);
    return;
  }
  std::string why;
  if (!spec->field.parse(*spec, setting.value, topology, result.config, why)) {
    add_error(result, {setting.name, printable_excerpt(setting.value, kMaxShownValueBytes),
                       std::string(spec->accepted), printable_excerpt(why, 200), setting.source});
  }
}

// The whole file, or nullopt with `why`. Only a regular file of at most
// kMaxConfigFileBytes is read: /dev/zero, a FIFO, a terminal or a directory
// would hang the program before main or read without end. O_NONBLOCK so that
// opening a FIFO cannot block; pread so that a file shared with the program
// (EGM_CONFIG=/dev/stdin on a redirected file) keeps its offset.
std::optional<std::string> read_config_file(const std::string& path, std::string& why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    why = std::string("cannot open the file: ") + std::strerror(errno);
    return std::nullopt;
  }
  struct stat status {};
  std::optional<std::string> text;
  if (::fstat(fd, &status) != 0) {
    why = std::string("cannot stat the file: ") + std::strerror(errno);
  } else if (S_ISDIR(status.st_mode)) {
    why = "it is a directory";
  } else if (!S_ISREG(status.st_mode)) {
    why = "it is not a regular file (a device, FIFO or socket)";
  } else if (static_cast<uint64_t>(status.st_size) > kMaxConfigFileBytes) {
    why = "the file is larger than 1 MiB (" + std::to_string(status.st_size) + " bytes)";
  } else {
    text.emplace(static_cast<size_t>(status.st_size), '\0');
    size_t done = 0;
    while (done < text->size()) {
      ssize_t got = ::pread(fd, text->data() + done, text->size() - done, static_cast<off_t>(done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        why = std::string("cannot read the file: ") + std::strerror(errno);
        text.reset();
        break;
      }
      if (got == 0) break;  // shrank meanwhile
      done += static_cast<size_t>(got);
    }
    if (text) text->resize(done);
  }
  ::close(fd);
  return text;
}

}  // namespace

bool HostTopology::has_node(int node) const {
  return std::any_of(nodes.begin(), nodes.end(),
                     [node](const NodeInfo& n) { return n.id == node; });
}

size_t HostTopology::total_bytes(int node) const {
  for (const NodeInfo& info : nodes) {
    if (info.id == node) return info.total_bytes;
  }
  return 0;
}

std::vector<int> HostTopology::node_ids() const {
  std::vector<int> ids;
  for (const NodeInfo& info : nodes) ids.push_back(info.id);
  return ids;
}

std::string HostTopology::describe_nodes() const { return format_int_list(node_ids()); }

int HostTopology::distance_between(int from, int to) const {
  auto found = distance.find({from, to});
  if (found != distance.end()) return found->second;
  return from == to ? 10 : 20;
}

Config::Config() {
  const HostTopology no_nodes;  // the defaults name no node
  for (const OptionSpec& spec : kOptions) {
    std::string why;
    spec.field.parse(spec, spec.default_value, no_nodes, *this, why);  // config_test: all parse
  }
  log_level_set = false;  // the default is not the user's choice
}

bool Config::device_selected(int device) const {
  return !devices || std::binary_search(devices->begin(), devices->end(), device);
}

Environment egm_variables_of_process() {
  Environment env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    size_t equals = text.find('=');
    if (equals == std::string_view::npos || text.rfind("EGM_", 0) != 0) continue;
    env.emplace(std::string(text.substr(0, equals)), std::string(text.substr(equals + 1)));
  }
  return env;
}

std::string ConfigError::to_string() const { return describe(show_value); }

std::string ConfigError::without_value() const { return describe(false); }

std::string ConfigError::describe(bool with_value) const {
  if (accepted.empty()) return variable + ": " + message;  // a count of errors not shown
  std::string line = with_value ? variable + "=\"" + value + "\"" : variable;
  if (!source.empty()) line += " (" + source + ")";
  line += " is not valid";
  if (!message.empty()) line += ": " + message;
  return line + "; accepted: " + accepted;
}

std::string ParsedConfig::summary() const {
  std::string text;
  for (const OptionSpec& spec : kOptions) {
    if (spec.field.print == nullptr) continue;
    if (!text.empty()) text += ' ';
    for (char c : spec.name.substr(std::string_view("EGM_").size())) {
      text += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    text += '=' + spec.field.print(spec, config);
  }
  return text;
}

namespace {

void parse_into(ParsedConfig& result, const Environment& env, const HostTopology& topology,
                std::string_view file_text, const std::string& file_name) {
  // Each variable comes from one source (the environment wins), so the order
  // of the two loops does not change the settings; the environment's errors
  // come first, then the file's values, then its malformed lines.
  ParsedConfig line_errors;
  std::vector<Setting> settings = settings_of_file(file_text, file_name, line_errors);
  for (const auto& [name, value] : env) apply({name, value, ""}, topology, result);
  for (const Setting& setting : settings) {
    if (env.count(setting.name) == 0) apply(setting, topology, result);
  }
  for (ConfigError& error : line_errors.errors) add_error(result, std::move(error));
  result.errors_not_shown += line_errors.errors_not_shown;
  if (result.config.min_size > result.config.max_size) {
    add_error(
        result,
        {"EGM_MIN_SIZE", std::to_string(result.config.min_size), "a size not above EGM_MAX_SIZE",
         "EGM_MIN_SIZE is above EGM_MAX_SIZE (" + std::to_string(result.config.max_size) + ")",
         ""});
  }
}

}  // namespace

ParsedConfig parse_config(const Environment& env, const HostTopology& topology,
                          const std::string& file_text, const std::string& file_name) {
  ParsedConfig result;
  parse_into(result, env, topology, file_text, file_name);
  result.add_counts_of_problems_not_shown();
  return result;
}

void ParsedConfig::add_counts_of_problems_not_shown() {
  if (errors_not_shown > 0) {
    errors.push_back({"EGM_CONFIG", "", "",
                      std::to_string(errors_not_shown) + " more configuration errors not shown", "",
                      false});
  }
  if (warnings_not_shown > 0) {
    warnings.push_back(std::to_string(warnings_not_shown) + " more warnings not shown");
  }
  errors_not_shown = warnings_not_shown = 0;
}

ParsedConfig load_config(const Environment& env, const HostTopology& topology) {
  auto path = env.find("EGM_CONFIG");
  ParsedConfig result;
  std::optional<std::string> text;
  if (path != env.end() && !path->second.empty()) {
    std::string why;
    text = read_config_file(path->second, why);
    if (!text) {
      add_error(result, {"EGM_CONFIG", printable_excerpt(path->second, kMaxShownPathBytes),
                         std::string(find_option("EGM_CONFIG")->accepted), why, ""});
    }
  }
  parse_into(result, env, topology, text.value_or(""), text ? path->second : "");
  result.add_counts_of_problems_not_shown();
  return result;
}

}  // namespace egm
