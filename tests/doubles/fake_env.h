// Numeric settings of the test doubles, read from the environment.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace fake {

// The value of `name` as a number, or `fallback` when unset; a malformed
// value aborts, so a typo in a test cannot go unnoticed.
inline long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(text, &end, 0);
  if (*end != '\0') {
    std::fprintf(stderr, "fake CUDA: %s=\"%s\" is not a number\n", name, text);
    std::abort();
  }
  return value;
}

}  // namespace fake
