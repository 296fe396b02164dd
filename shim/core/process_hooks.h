// How the shim lives inside its host process: fork(), fatal signals, and the
// on-request snapshot of the mapping table (the live view).
#pragma once

#include <cstddef>
#include <string>

namespace egm {

// What the hooks need of the shim's core (the Shim implements it), so that
// this library does not depend on the core.
class ProcessHookTarget {
 public:
  // Live allocations, for the fatal-signal line: async-signal-safe.
  virtual size_t live_count() const = 0;
  // In a child after fork(), single-threaded.
  virtual void on_fork_child() = 0;
  // The live view, written to `path` (the template expanded).
  virtual void write_snapshot(const std::string& path) = 0;
  // At exit, after every library's destructors.
  virtual void write_exit_summary() = 0;
  // A warning line for the user.
  virtual void note(const std::string& message) = 0;

 protected:
  ~ProcessHookTarget() = default;
};

struct ProcessHookSettings {
  bool fatal_signal_line = false;  // a log file is open to say it in
  std::string snapshot_template;   // EGM_SNAPSHOT_FILE; "" = no live view
};

// Installed once, at load.
void install_process_hooks(ProcessHookTarget& target, const ProcessHookSettings& settings);

// Called from the shim's destructor: writes the exit summary once every
// library's destructors have run (glibc runs an exit handler registered
// during exit after the ones before it, _dl_fini included), so that frees
// made in other libraries' destructors are not reported as leaks. Written at
// once when the process is not exiting through exit().
void write_exit_summary_last(ProcessHookTarget& target);

}  // namespace egm
