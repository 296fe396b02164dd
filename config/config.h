// Config: the effective settings, parsed once at load from the environment.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/values.h"

namespace egm {

// What the host offers; injected so that tests can describe any machine.
struct HostTopology {
  std::vector<int> nodes_with_memory;  // ascending
  bool has_node(int node) const;
  std::string describe_nodes() const;  // "0-1,3" form for messages
};

// The variables of the process environment that concern egm (EGM_*).
using Environment = std::map<std::string, std::string>;
Environment egm_variables_of_process();

struct Config {
  bool enable = true;
  std::optional<int> numa_node;  // unset = the GPU's nearest node
  std::string log_file_template;
  LogLevel log_level = LogLevel::kInfo;
  bool log_level_set = false;
  bool strict = false;
};

struct ConfigError {
  std::string variable;
  std::string value;
  std::string accepted;
  std::string message;
  std::string to_string() const;  // one line for a person
};

struct ParsedConfig {
  Config config;
  std::vector<ConfigError> errors;    // any error switches redirection off
  std::vector<std::string> warnings;  // e.g. unknown EGM_* names
};

ParsedConfig parse_config(const Environment& env, const HostTopology& topology);

}  // namespace egm
