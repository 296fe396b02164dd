#include "config/config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <string_view>

#include "config/options.h"

extern char** environ;

namespace egm {
namespace {

// Fills a Config field from a value; false = malformed (`why` may explain).
using Setter =
    std::function<bool(std::string_view value, const HostTopology&, Config&, std::string& why)>;

template <typename Enum, size_t N>
bool set_enum(std::string_view value, const std::array<std::string_view, N>& names, Enum& field) {
  for (size_t i = 0; i < N; ++i) {
    if (value == names[i]) {
      field = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

constexpr std::array<std::string_view, 3> kModeNames = {"always", "spill", "off"};
constexpr std::array<std::string_view, 3> kFallbackNames = {"device", "next-node", "error"};
constexpr std::array<std::string_view, 2> kPeerAccessNames = {"enabled", "all"};
constexpr std::array<std::string_view, 2> kMeminfoNames = {"device", "device+host"};
constexpr std::array<std::string_view, 2> kPointerAttributeNames = {"requested", "physical"};
constexpr std::array<std::string_view, 2> kGranularityNames = {"minimum", "recommended"};
constexpr std::array<std::string_view, 6> kPolicyNames = {"nearest",    "bind",     "preferred",
                                                          "interleave", "weighted", "most-free"};

bool set_bool(std::string_view value, bool& field) {
  std::optional<bool> parsed = parse_bool(value);
  if (parsed) field = *parsed;
  return parsed.has_value();
}

bool set_size(std::string_view value, size_t& field) {
  std::optional<size_t> parsed = parse_size(value);
  if (parsed) field = *parsed;
  return parsed.has_value();
}

// Every node must exist and have memory.
bool check_nodes(const std::vector<int>& nodes, const HostTopology& topology, std::string& why) {
  for (int node : nodes) {
    if (!topology.has_node(node)) {
      why = "node " + std::to_string(node) +
            " does not exist or has no memory (nodes with memory: " + topology.describe_nodes() +
            ")";
      return false;
    }
  }
  return true;
}

bool parse_nodes(std::string_view text, const HostTopology& topology, std::vector<int>& nodes,
                 std::string& why) {
  std::optional<std::vector<int>> parsed = parse_int_list(text, topology.node_ids());
  if (!parsed) return false;
  nodes = *parsed;
  return check_nodes(nodes, topology, why);
}

bool parse_weights(std::string_view text, const HostTopology& topology, NumaPolicy& policy,
                   std::string& why) {
  for (std::string_view item : split(text, ',')) {
    size_t equals = item.find('=');
    if (equals == std::string_view::npos) return false;
    std::optional<int> node = parse_non_negative_int(item.substr(0, equals));
    std::optional<int> weight = parse_non_negative_int(item.substr(equals + 1));
    if (!node || !weight || *weight == 0 || *weight > 1000000) return false;
    if (std::find(policy.nodes.begin(), policy.nodes.end(), *node) != policy.nodes.end()) {
      why = "node " + std::to_string(*node) + " is listed twice";
      return false;
    }
    policy.nodes.push_back(*node);
    policy.weights.push_back(static_cast<unsigned>(*weight));
  }
  return check_nodes(policy.nodes, topology, why);
}

bool set_numa_policy(std::string_view value, const HostTopology& topology, Config& config,
                     std::string& why) {
  size_t colon = value.find(':');
  std::string_view name = value.substr(0, colon);
  std::string_view argument = colon == std::string_view::npos ? "" : value.substr(colon + 1);
  NumaPolicy policy;
  if (!set_enum(name, kPolicyNames, policy.kind)) return false;
  bool takes_argument =
      policy.kind != NumaPolicyKind::kNearest && policy.kind != NumaPolicyKind::kMostFree;
  if (takes_argument != (colon != std::string_view::npos)) return false;
  bool ok = true;
  switch (policy.kind) {
    case NumaPolicyKind::kNearest:
    case NumaPolicyKind::kMostFree: break;
    case NumaPolicyKind::kBind:
    case NumaPolicyKind::kInterleave:
      ok = parse_nodes(argument, topology, policy.nodes, why);
      break;
    case NumaPolicyKind::kPreferred: {
      std::optional<int> node = parse_non_negative_int(argument);
      ok = node.has_value() && check_nodes({*node}, topology, why);
      if (ok) policy.nodes = {*node};
      break;
    }
    case NumaPolicyKind::kWeighted: ok = parse_weights(argument, topology, policy, why); break;
  }
  if (ok) config.numa_policy = policy;
  return ok;
}

bool set_apis(std::string_view value, Config& config) {
  if (value == "all") {
    config.apis = kAllApis;
    return true;
  }
  unsigned apis = 0;
  for (std::string_view name : split(value, ',')) {
    std::optional<Api> api = api_from_name(name);
    if (!api) return false;
    apis |= api_bit(*api);
  }
  config.apis = apis;
  return true;
}

bool set_devices(std::string_view value, Config& config) {
  if (value == "all") {
    config.devices.reset();
    return true;
  }
  std::optional<std::vector<int>> devices = parse_int_list(value, {});
  if (devices) config.devices = *devices;
  return devices.has_value();
}

bool set_node_limits(std::string_view value, const HostTopology& topology, Config& config,
                     std::string& why) {
  std::map<int, size_t> limits;
  if (value.empty()) {
    config.node_limits = limits;
    return true;
  }
  for (std::string_view item : split(value, ',')) {
    size_t colon = item.find(':');
    if (colon == std::string_view::npos) return false;
    std::optional<int> node = parse_non_negative_int(item.substr(0, colon));
    std::optional<size_t> limit = parse_size(item.substr(colon + 1));
    if (!node || !limit) return false;
    if (!check_nodes({*node}, topology, why)) return false;
    if (*limit > topology.total_bytes(*node)) {
      why = "the cap for node " + std::to_string(*node) + " (" + format_size(*limit) +
            ") is above the node's memory (" + format_size(topology.total_bytes(*node)) + ")";
      return false;
    }
    if (!limits.emplace(*node, *limit).second) {
      why = "node " + std::to_string(*node) + " is listed twice";
      return false;
    }
  }
  config.node_limits = limits;
  return true;
}

bool set_max_size(std::string_view value, Config& config) {
  if (value.empty()) {
    config.max_size = SIZE_MAX;
    return true;
  }
  return set_size(value, config.max_size);
}

bool set_path_template(std::string_view value, std::string& field, std::string& why) {
  for (size_t i = value.find('%'); i != std::string_view::npos; i = value.find('%', i + 2)) {
    if (i + 1 >= value.size() || (value[i + 1] != 'p' && value[i + 1] != '%')) {
      why = "only %p (process id) and %% may follow %";
      return false;
    }
  }
  field = std::string(value);
  return true;
}

bool set_log_level(std::string_view value, Config& config) {
  std::optional<LogLevel> level = parse_log_level(value);
  if (!level) return false;
  config.log_level = *level;
  config.log_level_set = true;
  return true;
}

// How each option of the table lands in Config.
const std::map<std::string_view, Setter>& setters() {
  static const auto* table = new std::map<std::string_view, Setter>{
      {"EGM_CONFIG", [](auto, auto&, Config&, auto&) { return true; }},  // read by load_config
      {"EGM_ENABLE", [](auto v, auto&, Config& c, auto&) { return set_bool(v, c.enable); }},
      {"EGM_MODE", [](auto v, auto&, Config& c, auto&) { return set_enum(v, kModeNames, c.mode); }},
      {"EGM_NUMA_POLICY", set_numa_policy},
      {"EGM_APIS", [](auto v, auto&, Config& c, auto&) { return set_apis(v, c); }},
      {"EGM_MIN_SIZE", [](auto v, auto&, Config& c, auto&) { return set_size(v, c.min_size); }},
      {"EGM_MAX_SIZE", [](auto v, auto&, Config& c, auto&) { return set_max_size(v, c); }},
      {"EGM_DEVICES", [](auto v, auto&, Config& c, auto&) { return set_devices(v, c); }},
      {"EGM_NODE_LIMIT", set_node_limits},
      {"EGM_FALLBACK",
       [](auto v, auto&, Config& c, auto&) { return set_enum(v, kFallbackNames, c.fallback); }},
      {"EGM_DEVICE_RESERVE",
       [](auto v, auto&, Config& c, auto&) { return set_size(v, c.device_reserve); }},
      {"EGM_MEMINFO", [](auto v, auto&, Config& c,
                         auto&) { return set_enum(v, kMeminfoNames, c.meminfo_includes_host); }},
      {"EGM_POINTER_ATTRIBUTES",
       [](auto v, auto&, Config& c, auto&) {
         return set_enum(v, kPointerAttributeNames, c.physical_pointer_attributes);
       }},
      {"EGM_POOL_LIMIT", [](auto v, auto&, Config& c, auto&) { return set_size(v, c.pool_limit); }},
      {"EGM_POOL_PREALLOC",
       [](auto v, auto&, Config& c, auto&) { return set_size(v, c.pool_prealloc); }},
      {"EGM_SUBALLOC", [](auto v, auto&, Config& c, auto&) { return set_bool(v, c.suballocate); }},
      {"EGM_PEER_ACCESS", [](auto v, auto&, Config& c,
                             auto&) { return set_enum(v, kPeerAccessNames, c.peer_access_all); }},
      {"EGM_HOOK_DRIVER",
       [](auto v, auto&, Config& c, auto&) { return set_bool(v, c.hook_driver); }},
      {"EGM_HOST_ACCESS",
       [](auto v, auto&, Config& c, auto&) { return set_bool(v, c.host_access); }},
      {"EGM_GRANULARITY", [](auto v, auto&, Config& c,
                             auto&) { return set_enum(v, kGranularityNames, c.granularity); }},
      {"EGM_LOG_FILE",
       [](auto v, auto&, Config& c, std::string& why) {
         return set_path_template(v, c.log_file_template, why);
       }},
      {"EGM_SNAPSHOT_FILE",
       [](auto v, auto&, Config& c, std::string& why) {
         return set_path_template(v, c.snapshot_template, why);
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

struct Setting {
  std::string name;
  std::string value;
  std::string source;  // "" = environment
};

// "NAME=value" lines; blank lines and '#' comments are skipped.
std::vector<Setting> settings_of_file(const std::string& text, const std::string& file_name,
                                      std::vector<ConfigError>& errors) {
  std::vector<Setting> settings;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    std::string source = file_name + ":" + std::to_string(number);
    size_t begin = line.find_first_not_of(" \t\r");
    if (begin == std::string::npos || line[begin] == '#') continue;
    size_t end = line.find_last_not_of(" \t\r");
    std::string content = line.substr(begin, end - begin + 1);
    size_t equals = content.find('=');
    if (equals == std::string::npos) {
      errors.push_back(
          {"EGM_CONFIG", content, "VARIABLE=value lines", "line is not VARIABLE=value", source});
      continue;
    }
    settings.push_back({content.substr(0, equals), content.substr(equals + 1), source});
  }
  return settings;
}

void apply(const Setting& setting, const HostTopology& topology, ParsedConfig& result) {
  const OptionSpec* spec = find_option(setting.name);
  std::string where = setting.source.empty() ? "" : " (" + setting.source + ")";
  if (spec == nullptr) {
    result.warnings.push_back("unknown variable " + setting.name + where +
                              " is ignored; did you mean " + closest_option_name(setting.name) +
                              "?");
    return;
  }
  std::string why;
  if (!setters().at(spec->name)(setting.value, topology, result.config, why)) {
    result.errors.push_back(
        {setting.name, setting.value, std::string(spec->accepted), why, setting.source});
  }
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

bool Config::device_selected(int device) const {
  return !devices || std::binary_search(devices->begin(), devices->end(), device);
}

std::string NumaPolicy::describe() const {
  std::string name(kPolicyNames[static_cast<size_t>(kind)]);
  switch (kind) {
    case NumaPolicyKind::kNearest:
    case NumaPolicyKind::kMostFree: return name;
    case NumaPolicyKind::kWeighted: {
      std::string text = name + ":";
      for (size_t i = 0; i < nodes.size(); ++i) {
        text += (i ? "," : "") + std::to_string(nodes[i]) + "=" + std::to_string(weights[i]);
      }
      return text;
    }
    default: return name + ":" + format_int_list(nodes);
  }
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
  std::string line = variable + "=\"" + value + "\"";
  if (!source.empty()) line += " (" + source + ")";
  line += " is not valid";
  if (!message.empty()) line += ": " + message;
  return line + "; accepted: " + accepted;
}

std::string ParsedConfig::summary() const {
  const Config& c = config;
  std::string limits;
  for (const auto& [node, limit] : c.node_limits) {
    limits += (limits.empty() ? "" : ",") + std::to_string(node) + ":" + format_size(limit);
  }
  std::string apis;
  for (size_t i = 0; i < kApiNames.size(); ++i) {
    if (c.api_selected(static_cast<Api>(i)))
      apis += (apis.empty() ? "" : ",") + std::string(kApiNames[i]);
  }
  return "mode=" + std::string(kModeNames[static_cast<size_t>(c.mode)]) +
         " numa_policy=" + c.numa_policy.describe() + " apis=" + (apis.empty() ? "none" : apis) +
         " min_size=" + std::to_string(c.min_size) +
         " max_size=" + (c.max_size == SIZE_MAX ? "unlimited" : std::to_string(c.max_size)) +
         " devices=" + (c.devices ? format_int_list(*c.devices) : "all") +
         " node_limit=" + (limits.empty() ? "none" : limits) +
         " fallback=" + std::string(kFallbackNames[static_cast<size_t>(c.fallback)]) +
         " device_reserve=" + std::to_string(c.device_reserve) +
         " host_access=" + (c.host_access ? "1" : "0") +
         " meminfo=" + (c.meminfo_includes_host ? "device+host" : "device") +
         " pointer_attributes=" + (c.physical_pointer_attributes ? "physical" : "requested") +
         " hook_driver=" + (c.hook_driver ? "1" : "0") +
         " pool_limit=" + std::to_string(c.pool_limit) +
         " pool_prealloc=" + std::to_string(c.pool_prealloc) +
         " suballoc=" + (c.suballocate ? "1" : "0") +
         " peer_access=" + (c.peer_access_all ? "all" : "enabled") +
         " granularity=" + std::string(kGranularityNames[static_cast<size_t>(c.granularity)]);
}

ParsedConfig parse_config(const Environment& env, const HostTopology& topology,
                          const std::string& file_text, const std::string& file_name) {
  ParsedConfig result;
  for (const Setting& setting : settings_of_file(file_text, file_name, result.errors)) {
    if (env.count(setting.name) == 0) apply(setting, topology, result);
  }
  for (const auto& [name, value] : env) apply({name, value, ""}, topology, result);
  if (result.config.min_size > result.config.max_size) {
    result.errors.push_back(
        {"EGM_MIN_SIZE", std::to_string(result.config.min_size), "a size not above EGM_MAX_SIZE",
         "EGM_MIN_SIZE is above EGM_MAX_SIZE (" + std::to_string(result.config.max_size) + ")",
         ""});
  }
  return result;
}

ParsedConfig load_config(const Environment& env, const HostTopology& topology) {
  auto path = env.find("EGM_CONFIG");
  if (path == env.end() || path->second.empty()) return parse_config(env, topology);
  std::ifstream file(path->second);
  if (!file) {
    ParsedConfig result = parse_config(env, topology);
    result.errors.push_back({"EGM_CONFIG", path->second, "a readable file of VARIABLE=value lines",
                             "cannot open the file", ""});
    return result;
  }
  std::stringstream text;
  text << file.rdbuf();
  return parse_config(env, topology, text.str(), path->second);
}

}  // namespace egm
