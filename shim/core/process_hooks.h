// How the shim lives inside its host process: fork(), fatal signals, and the
// on-request snapshot of the mapping table (the live view).
#pragma once

#include <string>

namespace egm {

class Shim;

struct ProcessHookSettings {
  bool fatal_signal_line = false;  // a log file is open to say it in
  std::string snapshot_template;   // EGM_SNAPSHOT_FILE; "" = no live view
};

// Installed once, at load.
void install_process_hooks(Shim& shim, const ProcessHookSettings& settings);

// Called from the shim's destructor: writes the exit summary once every
// library's destructors have run (glibc runs an exit handler registered
// during exit after the ones before it, _dl_fini included), so that frees
// made in other libraries' destructors are not reported as leaks. Written at
// once when the process is not exiting through exit().
void write_exit_summary_last(Shim& shim);

}  // namespace egm
