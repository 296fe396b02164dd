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

}  // namespace egm
