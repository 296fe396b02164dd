#include "tools/probe/cpu_access.h"

#include <setjmp.h>
#include <signal.h>

#include <cstdio>

namespace egm::probe {
namespace {

// The fault handler's way back into cpu_access_problem (one probe thread).
sigjmp_buf* fault_return = nullptr;

void on_fault(int signal) { siglongjmp(*fault_return, signal); }

// Installs on_fault for SIGSEGV and SIGBUS for its lifetime.
class FaultGuard {
 public:
  FaultGuard() {
    struct sigaction action = {};
    action.sa_handler = on_fault;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &old_segv_);
    sigaction(SIGBUS, &action, &old_bus_);
  }
  ~FaultGuard() {
    sigaction(SIGSEGV, &old_segv_, nullptr);
    sigaction(SIGBUS, &old_bus_, nullptr);
  }
  FaultGuard(const FaultGuard&) = delete;
  FaultGuard& operator=(const FaultGuard&) = delete;

 private:
  struct sigaction old_segv_ = {};
  struct sigaction old_bus_ = {};
};

// Volatile: every byte must really be loaded from the mapping.
size_t mismatch_in_mapping(const volatile unsigned char* bytes, size_t size, unsigned seed) {
  for (size_t i = 0; i < size; ++i) {
    if (bytes[i] != pattern_byte(i, seed)) return i;
  }
  return size;
}

void write_pattern_to_mapping(volatile unsigned char* bytes, size_t size, unsigned seed) {
  for (size_t i = 0; i < size; ++i) bytes[i] = pattern_byte(i, seed);
}

std::string mismatch_text(const volatile unsigned char* bytes, size_t index, unsigned seed,
                          const char* phase) {
  char text[128];
  std::snprintf(text, sizeof text, "%s: byte %zu is 0x%02x, expected 0x%02x", phase, index,
                bytes[index], pattern_byte(index, seed));
  return text;
}

}  // namespace

unsigned char pattern_byte(size_t index, unsigned seed) {
  return static_cast<unsigned char>((index * 131 + (index >> 8) + seed * 97 + 7) & 0xff);
}

void fill_pattern(unsigned char* buffer, size_t size, unsigned seed) {
  for (size_t i = 0; i < size; ++i) buffer[i] = pattern_byte(i, seed);
}

size_t first_pattern_mismatch(const unsigned char* buffer, size_t size, unsigned seed) {
  for (size_t i = 0; i < size; ++i) {
    if (buffer[i] != pattern_byte(i, seed)) return i;
  }
  return size;
}

std::string cpu_access_problem(void* address, size_t size, unsigned expected_seed,
                               unsigned write_seed) {
  auto* bytes = static_cast<volatile unsigned char*>(address);
  FaultGuard guard;
  sigjmp_buf jump;
  fault_return = &jump;
  // Volatile: they must survive the siglongjmp out of a fault.
  volatile const char* phase = "reading what the GPU copy wrote";
  volatile size_t read_mismatch = size;
  volatile size_t write_mismatch = size;
  int signal = sigsetjmp(jump, 1);
  if (signal == 0) {
    read_mismatch = mismatch_in_mapping(bytes, size, expected_seed);
    phase = "writing";
    write_pattern_to_mapping(bytes, size, write_seed);
    phase = "reading back what the CPU wrote";
    write_mismatch = mismatch_in_mapping(bytes, size, write_seed);
  }
  fault_return = nullptr;
  const char* where = const_cast<const char*>(phase);
  if (signal != 0) {
    return std::string(signal == SIGBUS ? "SIGBUS" : "SIGSEGV") + " while " + where;
  }
  if (read_mismatch != size) {
    return mismatch_text(bytes, read_mismatch, expected_seed, "the GPU copy's data");
  }
  if (write_mismatch != size) return mismatch_text(bytes, write_mismatch, write_seed, "readback");
  return "";
}

}  // namespace egm::probe
