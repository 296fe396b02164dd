#include "config/options_doc.h"

#include "config/options.h"

namespace egm {
namespace {

std::string or_unset(std::string_view value) {
  return value.empty() ? std::string("(unset)") : "`" + std::string(value) + "`";
}

}  // namespace

std::string options_markdown_table() {
  std::string table = "| variable | type | default | accepted | meaning |\n|---|---|---|---|---|\n";
  for (const OptionSpec& spec : kOptions) {
    table += "| `" + std::string(spec.name) + "` | " + std::string(spec.type) + " | " +
             or_unset(spec.default_value) + " | " + std::string(spec.accepted) + " | " +
             std::string(spec.doc) + " |\n";
  }
  return table;
}

std::string options_help_text() {
  std::string text;
  for (const OptionSpec& spec : kOptions) {
    text += "  " + std::string(spec.name) + "=" + std::string(spec.accepted) + "\n      " +
            std::string(spec.doc) + " Default: " +
            (spec.default_value.empty() ? std::string("unset") : std::string(spec.default_value)) +
            ".\n";
  }
  return text;
}

}  // namespace egm
