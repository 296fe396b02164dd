// Failure injection for the test doubles: an environment variable such as
//   FAKE_CUDA_FAIL=cuMemMap@2=1,cuMemCreate
// makes the 2nd call of cuMemMap return 1 and every call of cuMemCreate
// return the default code. Entries are `function[@N][=CODE]`, N 1-based.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fake {

struct FailRule {
  std::string function;
  long call = 0;  // 1-based; 0 = every call
  int code = 0;
};

// Parses a FAKE_*_FAIL value; a malformed entry aborts the process, since a
// silently ignored rule would make a test pass for the wrong reason.
std::vector<FailRule> parse_fail_spec(std::string_view spec, int default_code);

// Counts the calls of each function and decides which must fail.
class FailureInjector {
 public:
  FailureInjector(const char* env_variable, int default_code)
      : env_variable_(env_variable), default_code_(default_code) {}

  // Counts this call; returns the code it must fail with, or 0 to proceed.
  // The environment is read on every call so a test can change it mid-run.
  int on_call(std::string_view function);

  long call_count(std::string_view function) const;

  // Held across fork() (pthread_atfork), so that a child never inherits it locked.
  void lock_for_fork() { mutex_.lock(); }
  void unlock_after_fork() { mutex_.unlock(); }

 private:
  const char* env_variable_;
  int default_code_;
  mutable std::mutex mutex_;
  std::map<std::string, long, std::less<>> counts_;
};

}  // namespace fake
