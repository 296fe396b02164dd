// The second definition of next_probe_name() (see next_probe_a.cc).
extern "C" __attribute__((visibility("default"))) const char* next_probe_name() { return "b"; }
