// Config: the effective settings, parsed once at load from EGM_CONFIG (a
// file) and the environment (which wins).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/apis.h"
#include "config/values.h"

namespace egm {

struct NodeInfo {
  int id = 0;
  size_t total_bytes = 0;
};

// What the host offers; injected so that tests can describe any machine.
struct HostTopology {
  std::vector<NodeInfo> nodes;                  // nodes with memory, ascending ids
  std::map<std::pair<int, int>, int> distance;  // SLIT distances; missing = 10 or 20

  bool has_node(int node) const;
  size_t total_bytes(int node) const;
  std::vector<int> node_ids() const;
  std::string describe_nodes() const;  // "0-1,3" form for messages
  int distance_between(int from, int to) const;
};

// The variables of the process environment that concern egm (EGM_*).
using Environment = std::map<std::string, std::string>;
Environment egm_variables_of_process();

enum class Mode { kAlways, kSpill, kOff };
enum class NumaPolicyKind { kNearest, kBind, kPreferred, kInterleave, kWeighted, kMostFree };
enum class Fallback { kDevice, kNextNode, kError };
enum class Granularity { kMinimum, kRecommended };

struct NumaPolicy {
  NumaPolicyKind kind = NumaPolicyKind::kNearest;
  std::vector<int> nodes;         // bind, preferred (one), interleave, weighted
  std::vector<unsigned> weights;  // weighted: parallel to nodes
  std::string describe() const;   // as the user would write it
};

struct Config {
  bool enable = true;
  Mode mode = Mode::kAlways;
  NumaPolicy numa_policy;
  unsigned apis = kAllApis;  // api_bit() set
  size_t min_size = 0;
  size_t max_size = SIZE_MAX;
  std::optional<std::vector<int>> devices;  // unset = every GPU
  std::map<int, size_t> node_limits;        // node -> cap in mapped bytes
  Fallback fallback = Fallback::kDevice;
  size_t device_reserve = size_t{1} << 30;
  bool host_access = true;
  bool meminfo_includes_host = false;
  bool physical_pointer_attributes = false;  // EGM_POINTER_ATTRIBUTES=physical
  size_t pool_limit = size_t{1} << 30;
  size_t pool_prealloc = 0;
  bool suballocate = true;
  bool peer_access_all = false;
  bool hook_driver = true;
  Granularity granularity = Granularity::kMinimum;
  std::string log_file_template;
  std::string snapshot_template;
  LogLevel log_level = LogLevel::kInfo;
  bool log_level_set = false;
  bool strict = false;

  bool device_selected(int device) const;
  bool api_selected(Api api) const { return (apis & api_bit(api)) != 0; }
};

struct ConfigError {
  std::string variable;
  std::string value;
  std::string accepted;
  std::string message;
  std::string source;             // "" = environment, else "file:line"
  std::string to_string() const;  // one line for a person
};

struct ParsedConfig {
  Config config;
  std::vector<ConfigError> errors;    // any error switches redirection off
  std::vector<std::string> warnings;  // e.g. unknown EGM_* names
  std::string summary() const;        // effective settings, logfmt pairs
};

// `file_text` is the content of EGM_CONFIG (if any), `file_name` its path.
ParsedConfig parse_config(const Environment& env, const HostTopology& topology,
                          const std::string& file_text = "", const std::string& file_name = "");

// Reads EGM_CONFIG from `env` (if set) and parses everything.
ParsedConfig load_config(const Environment& env, const HostTopology& topology);

}  // namespace egm
