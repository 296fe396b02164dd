// The first of two libraries defining next_probe_name(), for the RTLD_NEXT
// test: the program links this one before libnext_probe_b.so, so RTLD_NEXT
// from here must find b's definition, whoever interposes dlsym.
#include <dlfcn.h>

extern "C" __attribute__((visibility("default"))) const char* next_probe_name() { return "a"; }

extern "C" __attribute__((visibility("default"))) const char* next_probe_name_after_a() {
  auto next = reinterpret_cast<const char* (*)()>(dlsym(RTLD_NEXT, "next_probe_name"));
  return next ? next() : "none";
}
