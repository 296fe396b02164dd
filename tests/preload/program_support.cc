#include "tests/preload/program_support.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

namespace test_program {

void report(const std::string& key, const std::string& value) {
  static FILE* file = [] {
    const char* path = std::getenv("ALLOC_PROGRAM_REPORT");
    return path ? std::fopen(path, "w") : nullptr;
  }();
  if (file == nullptr) return;
  std::fprintf(file, "%s=%s\n", key.c_str(), value.c_str());
  std::fflush(file);
}

std::string hex(uintptr_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "%#" PRIxPTR, value);
  return text;
}

std::string address_of(const void* pointer) { return hex(reinterpret_cast<uintptr_t>(pointer)); }

int run_scenario(const char* program, const Scenarios& scenarios, int argc, char** argv) {
  if (argc != 2 || scenarios.count(argv[1]) == 0) {
    std::fprintf(stderr, "usage: %s SCENARIO; scenarios:", program);
    for (const auto& [name, run] : scenarios) std::fprintf(stderr, " %s", name.c_str());
    std::fprintf(stderr, "\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("scenario %s\n", argv[1]);
  int status = scenarios.at(argv[1])();
  std::printf("exit %d\n", status);
  return status;
}

}  // namespace test_program
