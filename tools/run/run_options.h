// egm-run's command line. The EGM_* flags are generated from the options
// table (config/options.h): EGM_NUMA_POLICY is --numa-policy, and so on.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/options.h"

namespace egm::run {

struct RunRequest {
  std::map<std::string, std::string> settings;  // EGM_* variable -> value, from the flags
  std::string library;                          // --lib; "" = find libegm.so next to egm-run
  bool dry_run = false;
  bool help = false;
  std::vector<std::string> program;  // after `--`: the program and its arguments
};

struct ParsedCommandLine {
  RunRequest request;
  std::string error;  // "" = the command line is well-formed
};

// `args` are argv[1..]. Values are not validated here: load_config does that.
ParsedCommandLine parse_command_line(const std::vector<std::string>& args);

// "EGM_NUMA_POLICY" -> "--numa-policy".
std::string flag_of(std::string_view variable);

// The option a flag sets ("--numa-policy" -> EGM_NUMA_POLICY), or nullptr.
const OptionSpec* option_of_flag(std::string_view flag);

// `--help`: every option of the table plus egm-run's own flags.
std::string help_text();

}  // namespace egm::run
