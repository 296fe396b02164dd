// How an option's value lands in Config and comes back out for the start
// line. Each row of the options table (options.h) names its field with one
// of these, e.g. bool_field<&Config::enable>(): the row is the only place
// where an option's name, default, parser and printer are written.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "config/config.h"

namespace egm {

struct OptionSpec;

// Sets the option's field from `value`; false = malformed (`why` may explain).
using OptionParser = bool(const OptionSpec& spec, std::string_view value,
                          const HostTopology& topology, Config& config, std::string& why);
// The field's value for the start line.
using OptionPrinter = std::string(const OptionSpec& spec, const Config& config);

struct OptionField {
  OptionParser* parse;
  // On the start line keyed by the option's name in lower case without
  // EGM_; nullptr = not on the start line.
  OptionPrinter* print;
};

// Shared by the field kinds below (option_fields.cc).
bool parse_bool_into(std::string_view value, bool& field);
bool parse_size_into(std::string_view value, size_t& field);
bool parse_size_or_auto_into(std::string_view value, std::optional<size_t>& field);
std::string print_size_or_auto(const std::optional<size_t>& value);
bool parse_path_template_into(std::string_view value, std::string& field, std::string& why);
// An enum's names are its row's accepted text, "a, b or c", in the enum's order.
bool parse_enum_index(const OptionSpec& spec, std::string_view value, size_t& index);
std::string enum_name(const OptionSpec& spec, size_t index);

// 0 or 1 (also true/false, yes/no, on/off).
template <bool Config::*kMember>
constexpr OptionField bool_field() {
  return {[](const OptionSpec&, std::string_view value, const HostTopology&, Config& config,
             std::string&) { return parse_bool_into(value, config.*kMember); },
          [](const OptionSpec&, const Config& config) {
            return std::string(config.*kMember ? "1" : "0");
          }};
}

// Bytes with an optional suffix; printed in bytes.
template <size_t Config::*kMember>
constexpr OptionField size_field() {
  return {[](const OptionSpec&, std::string_view value, const HostTopology&, Config& config,
             std::string&) { return parse_size_into(value, config.*kMember); },
          [](const OptionSpec&, const Config& config) { return std::to_string(config.*kMember); }};
}

// A size or "auto" (nullopt: derived from the device at each request).
template <std::optional<size_t> Config::*kMember>
constexpr OptionField size_or_auto_field() {
  return {[](const OptionSpec&, std::string_view value, const HostTopology&, Config& config,
             std::string&) { return parse_size_or_auto_into(value, config.*kMember); },
          [](const OptionSpec&, const Config& config) {
            return print_size_or_auto(config.*kMember);
          }};
}

// One of the names of the row's accepted text; the field is an enum, or a
// bool for two names (false = the first).
template <auto kMember>
constexpr OptionField enum_field() {
  return {[](const OptionSpec& spec, std::string_view value, const HostTopology&, Config& config,
             std::string&) {
            size_t index = 0;
            if (!parse_enum_index(spec, value, index)) return false;
            using Field = std::remove_reference_t<decltype(config.*kMember)>;
            config.*kMember = static_cast<Field>(index);
            return true;
          },
          [](const OptionSpec& spec, const Config& config) {
            return enum_name(spec, static_cast<size_t>(config.*kMember));
          }};
}

// A file name in which %p stands for the process id, %r for the rank, %h for
// the host name (shim/core/log_identity.h).
template <std::string Config::*kMember>
constexpr OptionField path_template_field() {
  return {[](const OptionSpec&, std::string_view value, const HostTopology&, Config& config,
             std::string& why) { return parse_path_template_into(value, config.*kMember, why); },
          [](const OptionSpec&, const Config& config) { return config.*kMember; }};
}

// The options whose values need more than a field kind name their own
// parser and printer (option_fields.cc), e.g. {parse_apis, print_apis}.
OptionParser parse_nothing;  // EGM_CONFIG: read by load_config
OptionParser parse_numa_policy;
OptionPrinter print_numa_policy;
OptionParser parse_apis;
OptionPrinter print_apis;
OptionParser parse_max_size;  // "" = unlimited
OptionPrinter print_max_size;
OptionParser parse_devices;
OptionPrinter print_devices;
OptionParser parse_node_limits;
OptionPrinter print_node_limits;
OptionParser parse_metrics_interval;  // seconds, kept in milliseconds; not on the start line
OptionParser parse_ledger;  // auto, off or an absolute path
OptionParser parse_staging_window;  // a size of at least 1 MiB
OptionPrinter print_staging_window;
OptionParser parse_log_level_field;
OptionPrinter print_log_level;

// The same field, left off the start line.
constexpr OptionField off_start_line(OptionField field) { return {field.parse, nullptr}; }

}  // namespace egm
