#include "config/config.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>

#include "config/options.h"

extern char** environ;

namespace egm {
namespace {

using Setter =
    std::function<bool(std::string_view value, const HostTopology&, Config&, std::string& why)>;

bool set_bool(std::string_view value, bool& field) {
  std::optional<bool> parsed = parse_bool(value);
  if (parsed) field = *parsed;
  return parsed.has_value();
}

bool set_node(std::string_view value, const HostTopology& topology, Config& config,
              std::string& why) {
  if (value.empty()) return true;  // nearest node
  std::optional<int> node = parse_non_negative_int(value);
  if (!node) return false;
  if (!topology.has_node(*node)) {
    why = "node " + std::to_string(*node) +
          " does not exist or has no memory (nodes with memory: " + topology.describe_nodes() + ")";
    return false;
  }
  config.numa_node = node;
  return true;
}

bool set_log_level(std::string_view value, Config& config) {
  std::optional<LogLevel> level = parse_log_level(value);
  if (!level) return false;
  config.log_level = *level;
  config.log_level_set = true;
  return true;
}

bool set_path_template(std::string_view value, std::string& field, std::string& why) {
  if (value.find('\0') != std::string_view::npos) return false;
  if (value.find('%') != std::string_view::npos) {
    for (size_t i = value.find('%'); i != std::string_view::npos; i = value.find('%', i + 2)) {
      if (i + 1 >= value.size() || (value[i + 1] != 'p' && value[i + 1] != '%')) {
        why = "only %p (process id) and %% may follow %";
        return false;
      }
    }
  }
  field = std::string(value);
  return true;
}

// How each option of the table lands in Config.
const std::map<std::string_view, Setter>& setters() {
  static const auto* table = new std::map<std::string_view, Setter>{
      {"EGM_ENABLE", [](auto v, auto&, Config& c, auto&) { return set_bool(v, c.enable); }},
      {"EGM_NUMA_NODE", set_node},
      {"EGM_LOG_FILE",
       [](auto v, auto&, Config& c, std::string& why) {
         return set_path_template(v, c.log_file_template, why);
       }},
      {"EGM_LOG_LEVEL", [](auto v, auto&, Config& c, auto&) { return set_log_level(v, c); }},
      {"EGM_STRICT", [](auto v, auto&, Config& c, auto&) { return set_bool(v, c.strict); }},
  };
  return *table;
}

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

}  // namespace

bool HostTopology::has_node(int node) const {
  return std::binary_search(nodes_with_memory.begin(), nodes_with_memory.end(), node);
}

std::string HostTopology::describe_nodes() const {
  if (nodes_with_memory.empty()) return "none";
  std::string out;
  for (size_t i = 0; i < nodes_with_memory.size();) {
    size_t j = i;
    while (j + 1 < nodes_with_memory.size() && nodes_with_memory[j + 1] == nodes_with_memory[j] + 1)
      ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(nodes_with_memory[i]);
    if (j > i) out += '-' + std::to_string(nodes_with_memory[j]);
    i = j + 1;
  }
  return out;
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

std::string ConfigError::to_string() const {
  std::string line = variable + "=\"" + value + "\" is not valid";
  if (!message.empty()) line += ": " + message;
  return line + "; accepted: " + accepted;
}

ParsedConfig parse_config(const Environment& env, const HostTopology& topology) {
  ParsedConfig result;
  for (const auto& [name, value] : env) {
    const OptionSpec* spec = find_option(name);
    if (spec == nullptr) {
      result.warnings.push_back("unknown variable " + name + " is ignored; did you mean " +
                                closest_option_name(name) + "?");
      continue;
    }
    std::string why;
    if (!setters().at(spec->name)(value, topology, result.config, why)) {
      result.errors.push_back({name, value, std::string(spec->accepted), why});
    }
  }
  return result;
}

}  // namespace egm
