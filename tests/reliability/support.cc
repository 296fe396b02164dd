#include "tests/reliability/support.h"

#include <string_view>

#include "tests/preload/harness.h"

namespace reliability {

preload::RunResult run_program(const std::string& scenario,
                               std::map<std::string, std::string> env) {
  preload::RunOptions options;
  options.program = kProgram;
  options.args = {scenario};
  options.env = std::move(env);
  return preload::run(options);
}

preload::RunResult run_program_without_shim(const std::string& scenario,
                                            std::map<std::string, std::string> env) {
  preload::RunOptions options;
  options.program = kProgram;
  options.args = {scenario};
  options.preload = false;
  options.env = std::move(env);
  return preload::run(options);
}

size_t count_event_lines(const std::string& text, const std::string& event) {
  return count_lines_containing(text, " event=" + event + " ") +
         count_lines_containing(text, " event=" + event + "\n");
}

size_t count_lines_containing(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    end = end == std::string::npos ? text.size() : end + 1;  // the newline belongs to the line
    if (std::string_view(text).substr(begin, end - begin).find(part) != std::string_view::npos) {
      ++count;
    }
    begin = end;
  }
  return count;
}

}  // namespace reliability
