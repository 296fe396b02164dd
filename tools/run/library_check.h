// Checks that a file given as the shim library really is one, before egm-run
// execs the program with it: otherwise the dynamic loader prints a warning the
// user may miss and runs the program without redirection.
#pragma once

#include <string>

namespace egm::run {

// "" when `path` is an ELF shared object for this machine that exports
// `symbol` (in its dynamic symbol table); otherwise what is wrong, for a person.
std::string shared_library_problem(const std::string& path, const std::string& symbol);

}  // namespace egm::run
