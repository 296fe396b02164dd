// Renderings of the options table for people: `--help` text and the
// README's markdown table.
#pragma once

#include <string>

namespace egm {

std::string options_markdown_table();
std::string options_help_text();

}  // namespace egm
