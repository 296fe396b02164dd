#include "tools/inspect/ledger_view.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <iomanip>
#include <map>
#include <sstream>
#include <stdexcept>

#include "shim/core/host_ledger.h"
#include "tools/inspect/report.h"

namespace egm::inspect {

std::string ledger_report(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    // The last process out removes it.
    return "host ledger " + path + ": none (no process under egm-shim has host memory mapped)\n";
  }
  std::string why;
  std::optional<std::vector<LedgerRow>> rows = HostLedger::read(path, why);
  if (!rows) throw std::runtime_error("cannot read the host ledger: " + why);
  std::map<int, uint64_t> live_bytes;  // node -> bytes the caps count
  for (const LedgerRow& row : *rows) {
    for (int node = 0; node < static_cast<int>(row.bytes.size()); ++node) {
      if (row.bytes[node] != 0 && row.alive) live_bytes[node] += row.bytes[node];
      if (row.bytes[node] != 0 && !live_bytes.count(node)) live_bytes[node] += 0;
    }
  }
  std::ostringstream out;
  out << "host ledger " << path << ": " << rows->size() << " process"
      << (rows->size() == 1 ? "" : "es") << "\n";
  out << std::setw(10) << "PID" << "  " << std::setw(5) << "STATE" << "  NODE  BYTES\n";
  for (const LedgerRow& row : *rows) {
    bool any = false;
    for (const auto& [node, total] : live_bytes) {
      if (row.bytes[node] == 0) continue;
      any = true;
      out << std::setw(10) << row.process.pid << "  " << std::setw(5)
          << (row.alive ? "alive" : "dead") << "  " << std::setw(4) << node << "  "
          << row.bytes[node] << " (" << human_bytes(row.bytes[node]) << ")\n";
    }
    if (!any) {
      out << std::setw(10) << row.process.pid << "  " << std::setw(5)
          << (row.alive ? "alive" : "dead") << "     -  0\n";
    }
  }
  for (const auto& [node, total] : live_bytes) {
    out << "node " << node << ": " << total << " bytes (" << human_bytes(total)
        << ") pinned by live processes\n";
  }
  if (rows->empty()) out << "no process has host memory mapped\n";
  return out.str();
}

}  // namespace egm::inspect
