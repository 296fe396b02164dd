#include "config/option_fields.h"

#include <algorithm>
#include <array>
#include <vector>

#include "config/options.h"

namespace egm {
namespace {

constexpr std::array<std::string_view, 6> kPolicyNames = {"nearest",    "bind",     "preferred",
                                                          "interleave", "weighted", "most-free"};

// "a, b or c" -> {a, b, c}.
std::vector<std::string_view> enum_names(std::string_view accepted) {
  std::vector<std::string_view> names;
  constexpr std::string_view kOr = " or ";
  size_t last = accepted.rfind(kOr);
  std::string_view head = accepted.substr(0, last);
  for (size_t at = head.find(", "); at != std::string_view::npos; at = head.find(", ")) {
    names.push_back(head.substr(0, at));
    head.remove_prefix(at + 2);
  }
  names.push_back(head);
  if (last != std::string_view::npos) names.push_back(accepted.substr(last + kOr.size()));
  return names;
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
  std::optional<std::vector<int>> parsed =
      parse_int_list(text, topology.node_ids(), kMaxNodeNumber, why);
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

std::optional<NumaPolicyKind> policy_kind(std::string_view name) {
  for (size_t i = 0; i < kPolicyNames.size(); ++i) {
    if (name == kPolicyNames[i]) return static_cast<NumaPolicyKind>(i);
  }
  return std::nullopt;
}

}  // namespace

bool parse_bool_into(std::string_view value, bool& field) {
  std::optional<bool> parsed = parse_bool(value);
  if (parsed) field = *parsed;
  return parsed.has_value();
}

bool parse_size_into(std::string_view value, size_t& field) {
  std::optional<size_t> parsed = parse_size(value);
  if (parsed) field = *parsed;
  return parsed.has_value();
}

bool parse_size_or_auto_into(std::string_view value, std::optional<size_t>& field) {
  if (value == "auto") {
    field.reset();
    return true;
  }
  std::optional<size_t> parsed = parse_size(value);
  if (parsed) field = *parsed;
  return parsed.has_value();
}

std::string print_size_or_auto(const std::optional<size_t>& value) {
  return value ? std::to_string(*value) : "auto";
}

bool parse_path_template_into(std::string_view value, std::string& field, std::string& why) {
  for (size_t i = value.find('%'); i != std::string_view::npos; i = value.find('%', i + 2)) {
    constexpr std::string_view kSequences = "prh%";
    if (i + 1 >= value.size() || kSequences.find(value[i + 1]) == std::string_view::npos) {
      why = "only %p (process id), %r (rank), %h (host name) and %% may follow %";
      return false;
    }
  }
  field = std::string(value);
  return true;
}

bool parse_enum_index(const OptionSpec& spec, std::string_view value, size_t& index) {
  std::vector<std::string_view> names = enum_names(spec.accepted);
  auto found = std::find(names.begin(), names.end(), value);
  if (found == names.end()) return false;
  index = static_cast<size_t>(found - names.begin());
  return true;
}

std::string enum_name(const OptionSpec& spec, size_t index) {
  std::vector<std::string_view> names = enum_names(spec.accepted);
  return index < names.size() ? std::string(names[index]) : std::to_string(index);
}

bool parse_nothing(const OptionSpec&, std::string_view, const HostTopology&, Config&,
                   std::string&) {
  return true;
}

bool parse_numa_policy(const OptionSpec&, std::string_view value, const HostTopology& topology,
                       Config& config, std::string& why) {
  size_t colon = value.find(':');
  std::optional<NumaPolicyKind> kind = policy_kind(value.substr(0, colon));
  if (!kind) return false;
  std::string_view argument = colon == std::string_view::npos ? "" : value.substr(colon + 1);
  NumaPolicy policy;
  policy.kind = *kind;
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

std::string print_numa_policy(const OptionSpec&, const Config& config) {
  return config.numa_policy.describe();
}

bool parse_apis(const OptionSpec&, std::string_view value, const HostTopology&, Config& config,
                std::string&) {
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

std::string print_apis(const OptionSpec&, const Config& config) {
  std::string apis;
  for (size_t i = 0; i < kInterceptedApiCount; ++i) {
    if (config.api_selected(static_cast<Api>(i)))
      apis += (apis.empty() ? "" : ",") + std::string(kApiNames[i]);
  }
  return apis.empty() ? "none" : apis;
}

bool parse_staging_window(const OptionSpec&, std::string_view value, const HostTopology&,
                          Config& config, std::string& why) {
  constexpr size_t kMinimum = size_t{1} << 20;  // room for one allocation of 256 KiB
  if (!parse_size_into(value, config.staging_window)) return false;
  if (config.staging_window >= kMinimum) return true;
  why = "below the smallest window, 1M";
  return false;
}

std::string print_staging_window(const OptionSpec&, const Config& config) {
  return std::to_string(config.staging_window);
}

bool parse_max_size(const OptionSpec&, std::string_view value, const HostTopology&,
                    Config& config, std::string&) {
  if (value.empty()) {
    config.max_size = SIZE_MAX;
    return true;
  }
  return parse_size_into(value, config.max_size);
}

std::string print_max_size(const OptionSpec&, const Config& config) {
  return config.max_size == SIZE_MAX ? "unlimited" : std::to_string(config.max_size);
}

bool parse_devices(const OptionSpec&, std::string_view value, const HostTopology&,
                   Config& config, std::string& why) {
  if (value == "all") {
    config.devices.reset();
    return true;
  }
  std::optional<std::vector<int>> devices = parse_int_list(value, {}, kMaxDeviceOrdinal, why);
  if (devices) config.devices = *devices;
  return devices.has_value();
}

std::string print_devices(const OptionSpec&, const Config& config) {
  return config.devices ? format_int_list(*config.devices) : "all";
}

bool parse_node_limits(const OptionSpec&, std::string_view value, const HostTopology& topology,
                       Config& config, std::string& why) {
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

std::string print_node_limits(const OptionSpec&, const Config& config) {
  std::string limits;
  for (const auto& [node, limit] : config.node_limits) {
    limits += (limits.empty() ? "" : ",") + std::to_string(node) + ":" + format_size(limit);
  }
  return limits.empty() ? "none" : limits;
}

bool parse_ledger(const OptionSpec&, std::string_view value, const HostTopology&, Config& config,
                  std::string& why) {
  if (value != "auto" && value != "off" && (value.empty() || value.front() != '/')) {
    why = "a path must be absolute";
    return false;
  }
  if (value.back() == '/') {
    why = "a path must name a file, not a directory";
    return false;
  }
  config.ledger = std::string(value);
  return true;
}

bool parse_log_level_field(const OptionSpec&, std::string_view value, const HostTopology&,
                           Config& config, std::string&) {
  std::optional<LogLevel> level = parse_log_level(value);
  if (!level) return false;
  config.log_level = *level;
  config.log_level_set = true;
  return true;
}

std::string print_log_level(const OptionSpec&, const Config& config) {
  return std::string(log_level_name(config.log_level));
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

}  // namespace egm

namespace egm {

// Decimal seconds ("5", "0.5"), at most three fractional digits: the
// interval is kept in milliseconds.
bool parse_metrics_interval(const OptionSpec&, std::string_view value, const HostTopology&,
                            Config& config, std::string& why) {
  constexpr uint64_t kMinMs = 100, kMaxMs = 86'400'000;
  uint64_t whole = 0, fraction = 0, scale = 1000;
  size_t i = 0, digits = 0;
  for (; i < value.size() && value[i] >= '0' && value[i] <= '9' && digits < 6; ++i, ++digits) {
    whole = whole * 10 + static_cast<uint64_t>(value[i] - '0');
  }
  if (digits == 0) return false;
  if (i < value.size() && value[i] == '.') {
    size_t fraction_digits = 0;
    for (++i; i < value.size() && value[i] >= '0' && value[i] <= '9'; ++i, ++fraction_digits) {
      if (fraction_digits == 3) return false;
      scale /= 10;
      fraction += static_cast<uint64_t>(value[i] - '0') * scale;
    }
    if (fraction_digits == 0) return false;
  }
  if (i != value.size()) return false;
  uint64_t milliseconds = whole * 1000 + fraction;
  if (milliseconds < kMinMs || milliseconds > kMaxMs) {
    why = "the interval must lie between 0.1 and 86400 seconds";
    return false;
  }
  config.metrics_interval_ms = milliseconds;
  return true;
}

}  // namespace egm
