// The live view: ask a running program (its egm-shim) for its current
// mapping table and wait for the snapshot file.
#pragma once

#include <sys/types.h>

#include <string>

namespace egm::inspect {

// Sends SIGUSR2 to `pid` and waits (up to `timeout_ms`) until the snapshot
// file named by `path_template` (%p = pid) is new. Returns its path; throws
// std::runtime_error saying what went wrong.
std::string request_snapshot(pid_t pid, const std::string& path_template, int timeout_ms);

}  // namespace egm::inspect
