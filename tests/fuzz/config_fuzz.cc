// libFuzzer target for the configuration parser: the input is read both as
// an EGM_CONFIG file and, line by line, as environment values of every option.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config.h"
#include "config/options.h"

namespace {

const egm::HostTopology kTopology{{{0, size_t{64} << 30}, {1, size_t{64} << 30}, {3, size_t{1} << 30}},
                                  {}};

void parse_as_environment(const std::string& text) {
  egm::Environment env;
  size_t line_start = 0;
  for (const egm::OptionSpec& spec : egm::kOptions) {
    if (spec.name == "EGM_CONFIG") continue;  // would open files
    size_t line_end = text.find('\n', line_start);
    env[std::string(spec.name)] = text.substr(line_start, line_end - line_start);
    if (line_end == std::string::npos) break;
    line_start = line_end + 1;
  }
  egm::ParsedConfig parsed = egm::parse_config(env, kTopology);
  for (const egm::ConfigError& error : parsed.errors) (void)error.to_string();
  (void)parsed.summary();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  egm::ParsedConfig parsed = egm::parse_config({}, kTopology, text, "fuzz.conf");
  (void)parsed.summary();
  parse_as_environment(text);
  return 0;
}
