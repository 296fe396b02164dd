#include "config/options.h"

namespace egm {

const OptionSpec* find_option(std::string_view name) {
  for (const OptionSpec& spec : kOptions) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string_view option_type_name(OptionType type) {
  switch (type) {
    case OptionType::kBool: return "bool";
    case OptionType::kNode: return "node";
    case OptionType::kPathTemplate: return "path";
    case OptionType::kLogLevel: return "level";
  }
  return "?";
}

}  // namespace egm
