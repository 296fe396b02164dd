#include "tools/inspect/prometheus.h"

#include <algorithm>
#include <map>
#include <optional>

namespace egm::inspect {
namespace {

std::optional<uint64_t> unsigned_field(const LogLine& line, const char* key) {
  auto found = line.fields.find(key);
  return found == line.fields.end() ? std::nullopt : parse_unsigned(found->second);
}

std::optional<int64_t> signed_field(const LogLine& line, const char* key) {
  auto found = line.fields.find(key);
  return found == line.fields.end() ? std::nullopt : parse_signed(found->second);
}

std::string text_field(const LogLine& line, const char* key) {
  auto found = line.fields.find(key);
  return found == line.fields.end() ? std::string() : found->second;
}

// A chunk mapped (+) or unmapped (-): what the shim's budget charges.
void on_chunk(const LogLine& line, int direction, ProcessMetrics& process) {
  std::optional<int64_t> node = signed_field(line, "node");
  std::optional<int64_t> device = signed_field(line, "device");
  std::optional<uint64_t> bytes = unsigned_field(line, "bytes");
  if (!node || !device || !bytes) return;
  for (PinnedUsage* usage :
       {&process.nodes[static_cast<int>(*node)], &process.devices[static_cast<int>(*device)]}) {
    if (direction > 0) {
      usage->current_bytes += *bytes;
      usage->peak_bytes = std::max(usage->peak_bytes, usage->current_bytes);
    } else {
      usage->current_bytes -= std::min(usage->current_bytes, *bytes);
    }
  }
}

void on_map(const LogLine& line, ProcessMetrics& process) {
  std::optional<int64_t> node = signed_field(line, "node");
  std::optional<int64_t> device = signed_field(line, "device");
  if (!node || !device) return;
  ++process.maps;
  ++process.live_allocations;
  ++process.nodes[static_cast<int>(*node)].maps;
  ++process.devices[static_cast<int>(*device)].maps;
}

// Only the spill rule's decisions carry the device's memory.
void on_decision(const LogLine& line, ProcessMetrics& process) {
  std::optional<int64_t> device = signed_field(line, "device");
  if (!device || !line.fields.count("device_total")) return;
  ++process.spill_decisions[SpillKey{static_cast<int>(*device), text_field(line, "placement"),
                                     text_field(line, "reason")}];
}

}  // namespace

std::vector<ProcessMetrics> metrics_from_logs(MergedLogReader& reader) {
  std::map<int64_t, ProcessMetrics> by_pid;
  std::map<int64_t, bool> chunks_seen;
  LogLine line;
  while (reader.next(line)) {
    ProcessMetrics& process = by_pid[line.pid];
    process.pid = line.pid;
    const std::string& event = line.event;
    if (event == "chunk-map" || event == "chunk-unmap") {
      chunks_seen[line.pid] = true;
      on_chunk(line, event == "chunk-map" ? +1 : -1, process);
    } else if (event == "map" && text_field(line, "source") != "snapshot")
      on_map(line, process);
    else if (event == "unmap") {
      ++process.unmaps;
      if (process.live_allocations > 0) --process.live_allocations;
    } else if (event == "fallback")
      ++process.fallbacks;
    else if (event == "decision")
      on_decision(line, process);
    else if (event == "summary" || event == "snapshot") {
      if (auto cached = unsigned_field(line, "pool_cached_bytes"))
        process.pool_cached_bytes = cached;
    }
  }
  std::vector<ProcessMetrics> processes;
  for (auto& [pid, process] : by_pid) {
    process.pinned_known = chunks_seen[pid];
    processes.push_back(std::move(process));
  }
  return processes;
}

}  // namespace egm::inspect
