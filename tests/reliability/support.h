// Helpers shared by the reliability tests: running reliability_program
// through the preload harness, and what the sanitizer builds change.
#pragma once

#include <map>
#include <string>

#include "tests/preload/harness.h"

namespace reliability {

inline constexpr const char* kProgram = "tests/reliability/reliability_program";

// `reliability_program scenario` with the harness's defaults (debug log in
// the run's directory, pool off) and `env` added.
preload::RunResult run_program(const std::string& scenario,
                               std::map<std::string, std::string> env = {});
preload::RunResult run_program_without_shim(const std::string& scenario,
                                            std::map<std::string, std::string> env = {});

// Lines of `text` (a log) whose event is `event`; counted without parsing,
// for logs of hundreds of thousands of lines.
size_t count_event_lines(const std::string& text, const std::string& event);

// The lines of `text` that contain `part`.
size_t count_lines_containing(const std::string& text, const std::string& part);

constexpr bool kThreadSanitizer =
#if defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

constexpr bool kAddressSanitizer =
#if defined(__SANITIZE_ADDRESS__)
    true;
#else
    false;
#endif

}  // namespace reliability
