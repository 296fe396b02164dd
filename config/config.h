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

// The fields get their defaults from the options table (config/options.h),
// where each option's row names its field; none is written here.
struct Config {
  Config();  // every option at its table default

  bool enable;
  Mode mode;
  NumaPolicy numa_policy;
  unsigned apis;  // api_bit() set
  size_t min_size;
  size_t max_size;
  std::optional<std::vector<int>> devices;  // unset = every GPU
  std::map<int, size_t> node_limits;        // node -> cap in mapped bytes
  std::string ledger;                       // EGM_LEDGER: auto, off or a path
  Fallback fallback;
  // spill mode; nullopt = auto, derived from the device (shim/core/spill_rule.h)
  std::optional<size_t> device_reserve;
  std::optional<size_t> spill_min_size;
  bool host_access;
  bool meminfo_includes_host;        // EGM_MEMINFO=device+host
  bool physical_pointer_attributes;  // EGM_POINTER_ATTRIBUTES=physical
  size_t pool_limit;
  size_t pool_prealloc;
  bool suballocate;
  bool peer_access_all;  // EGM_PEER_ACCESS=all
  bool hook_driver;
  Granularity granularity;
  std::string log_file_template;
  std::string snapshot_template;
  std::string metrics_template;  // EGM_METRICS_FILE
  uint64_t metrics_interval_ms;
  LogLevel log_level;
  bool log_level_set = false;  // EGM_LOG_LEVEL was given (not an option of its own)
  bool strict;
  bool staging;            // EGM_STAGING
  size_t staging_window;   // EGM_STAGING_WINDOW, bytes per GPU

  bool device_selected(int device) const;
  bool api_selected(Api api) const { return (apis & api_bit(api)) != 0; }
};

struct ConfigError {
  std::string variable;
  std::string value;
  std::string accepted;
  std::string message;
  std::string source;             // "" = environment, else "file:line"
  bool show_value = true;         // false: a config-file line not shown (it may be anything)
  std::string to_string() const;  // one line for a person
  // The same without the value, for a log line that has it in its own key.
  std::string without_value() const;

 private:
  std::string describe(bool with_value) const;
};

// At most ten errors and ten warnings are kept (values cut to 80 bytes,
// control bytes escaped); the rest are counted, and load_config adds one
// line with each count.
struct ParsedConfig {
  Config config;
  std::vector<ConfigError> errors;    // any error switches redirection off
  std::vector<std::string> warnings;  // e.g. unknown EGM_* names
  size_t errors_not_shown = 0;
  size_t warnings_not_shown = 0;
  // The effective settings as logfmt pairs, in table order: each option
  // with a printer, keyed by its name in lower case without EGM_.
  std::string summary() const;
  void add_counts_of_problems_not_shown();
};

// `file_text` is the content of EGM_CONFIG (if any), `file_name` its path.
ParsedConfig parse_config(const Environment& env, const HostTopology& topology,
                          const std::string& file_text = "", const std::string& file_name = "");

// Reads EGM_CONFIG from `env` (if set: a regular file of at most 1 MiB) and
// parses everything.
ParsedConfig load_config(const Environment& env, const HostTopology& topology);

}  // namespace egm
