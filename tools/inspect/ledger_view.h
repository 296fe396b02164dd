// `egm-inspect --live` without a PID: every process of the user on the host,
// from the host ledger (shim/core/host_ledger.h) that EGM_NODE_LIMIT counts.
#pragma once

#include <string>

namespace egm::inspect {

// The ledger at `path` as a table: pid, alive or dead, bytes per node, and the
// totals the caps count (live processes). Throws std::runtime_error when it
// cannot be read or trusted.
std::string ledger_report(const std::string& path);

}  // namespace egm::inspect
