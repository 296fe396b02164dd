// What egm::Shim writes to the log: decisions, maps, unmaps, the exit summary.
#include <fmt/format.h>

#include "config/version.h"
#include "shim/core/clock.h"
#include "shim/core/shim.h"

namespace egm {

void Shim::log_start_once() {
  if (start_logged_.exchange(true, std::memory_order_relaxed)) return;
  // Every option with a printer in the options table, log_level last.
  log_.write(LogLevel::kInfo, "start", fmt::format("version={} {}", kVersion, parsed_.summary()));
}

void Shim::log_decision(const Request& request, int device, const char* placement,
                        const char* reason) {
  if (!log_.enabled(LogLevel::kDebug)) return;
  log_.write(LogLevel::kDebug, "decision",
             fmt::format("api={} requested={} device={} placement={} reason={}",
                         api_name(request.api), request.size, device, placement, reason));
}

namespace {

// The device's memory is the whole device's, from cuMemGetInfo.
std::string spill_fields(const SpillDecision& decision, const DeviceMemory& memory) {
  return fmt::format("device_free={} device_total={} spill_min_size={} device_reserve={}",
                     memory.free, memory.total, decision.spill_min_size, decision.device_reserve);
}

}  // namespace

void Shim::log_spill_decision(const Request& request, int device, const char* placement,
                              const SpillDecision& decision, const DeviceMemory& memory) {
  if (!log_.enabled(LogLevel::kInfo)) return;
  log_.write(LogLevel::kInfo, "decision",
             fmt::format("api={} requested={} device={} placement={} reason={} {}",
                         api_name(request.api), request.size, device, placement, decision.reason,
                         spill_fields(decision, memory)));
}

std::string Shim::spill_trigger(const char* trigger, const SpillDecision& decision,
                                const DeviceMemory& memory) {
  return fmt::format("{} spill_reason={} {}", trigger, decision.reason,
                     spill_fields(decision, memory));
}

void Shim::log_fallback(const Request& request, int node, int device, const char* step,
                        const char* error, const char* action) {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  log_.write(LogLevel::kWarn, "fallback",
             fmt::format("api={} requested={} node={} device={} step={} error={} action={}",
                         api_name(request.api), request.size, node, device, step,
                         logfmt_value(error ? error : "unknown"), action));
}

void Shim::log_map(const Mapping& mapping, int64_t map_us, const std::string& reason,
                   const char* source) {
  log_.write(LogLevel::kInfo, "map",
             fmt::format("id={} api={} addr={:#x} requested={} mapped={} node={} device={} "
                         "handle={:#x} chunk={} source={} map_us={} reason={}",
                         mapping.id, api_name(mapping.api), mapping.address, mapping.requested,
                         mapping.mapped, mapping.node, mapping.device, mapping.handle,
                         mapping.chunk_id, source, map_us, reason));
}

// Chunks are the pinned memory behind user allocations: mapped once, reused
// through the pool, unmapped when evicted or trimmed.
void Shim::log_chunk(const char* event, const Chunk& chunk, const char* reason, int64_t micros) {
  bool map = std::string_view(event) == "map";
  log_.write(
      LogLevel::kInfo, map ? "chunk-map" : "chunk-unmap",
      fmt::format("chunk={} addr={:#x} bytes={} node={} device={} handle={:#x} {}={} "
                  "reason={}",
                  chunk.id, chunk.mapping.address, chunk.mapping.mapped_size, chunk.node,
                  chunk.device, chunk.mapping.handle, map ? "map_us" : "unmap_us", micros, reason));
}

void Shim::log_unmap(const Mapping& mapping, int64_t unmap_us, const char* how) {
  log_.write(LogLevel::kInfo, "unmap",
             fmt::format("id={} api={} addr={:#x} requested={} mapped={} node={} device={} "
                         "lifetime_us={} unmap_us={} via={}",
                         mapping.id, api_name(mapping.api), mapping.address, mapping.requested,
                         mapping.mapped, mapping.node, mapping.device,
                         wall_clock_us() - mapping.created_us, unmap_us, how));
}

void Shim::write_exit_summary() {
  if (forked_child_) return;  // the parent owns the mappings and reports them
  uint64_t maps = table_.total_inserted();
  uint64_t fallbacks = fallbacks_.load(std::memory_order_relaxed);
  if (maps == 0 && fallbacks == 0) return;  // the process never asked: leave no trace
  std::vector<Mapping> live = table_.live();
  size_t live_bytes = 0;
  for (const Mapping& mapping : live) live_bytes += mapping.mapped;
  log_.write(LogLevel::kInfo, "summary",
             fmt::format("maps={} unmaps={} fallbacks={} live={} live_bytes={} pending_frees={} "
                         "pool_cached_bytes={}",
                         maps, table_.total_removed(), fallbacks, live.size(), live_bytes,
                         deferred_.count(), pool_->cached_bytes()));
  for (const auto& [node, usage] : table_.usage_by_node()) {
    log_.write(LogLevel::kInfo, "node-summary",
               fmt::format("node={} current_bytes={} peak_bytes={} maps={}", node,
                           usage.current_bytes, usage.peak_bytes, usage.maps));
  }
  for (const auto& [device, usage] : table_.usage_by_device()) {
    log_.write(LogLevel::kInfo, "device-summary",
               fmt::format("device={} current_bytes={} peak_bytes={} maps={}", device,
                           usage.current_bytes, usage.peak_bytes, usage.maps));
  }
  int64_t now = wall_clock_us();
  for (const Mapping& mapping : live) {
    log_.write(LogLevel::kInfo, "leak",
               fmt::format("id={} api={} addr={:#x} requested={} mapped={} node={} device={} "
                           "age_us={}",
                           mapping.id, api_name(mapping.api), mapping.address, mapping.requested,
                           mapping.mapped, mapping.node, mapping.device, now - mapping.created_us));
  }
}

}  // namespace egm

namespace egm {

void Shim::note(const std::string& message) {
  log_.write(LogLevel::kWarn, "notice", "message=" + logfmt_value(message));
}

void Shim::on_fork_child() {
  forked_child_ = true;
  log_.restart_after_fork();
}

std::string Shim::map_fields(const Mapping& mapping) const {
  return fmt::format(
      "id={} api={} addr={:#x} requested={} mapped={} node={} device={} "
      "handle={:#x} chunk={}",
      mapping.id, api_name(mapping.api), mapping.address, mapping.requested, mapping.mapped,
      mapping.node, mapping.device, mapping.handle, mapping.chunk_id);
}

void Shim::write_snapshot(const std::string& path) {
  std::vector<Mapping> live = table_.live();
  size_t live_bytes = 0;
  for (const Mapping& mapping : live) live_bytes += mapping.mapped;
  std::string text = log_line(LogLevel::kInfo, "snapshot",
                              fmt::format("live={} live_bytes={} pool_cached_bytes={}", live.size(),
                                          live_bytes, pool_->cached_bytes()));
  for (const Mapping& mapping : live) {
    // Live mappings as map lines: egm-inspect replays a snapshot like a log.
    text += log_line(LogLevel::kInfo, "map", map_fields(mapping) + " source=snapshot");
  }
  for (const auto& [node, usage] : table_.usage_by_node()) {
    text += log_line(LogLevel::kInfo, "node-summary",
                     fmt::format("node={} current_bytes={} peak_bytes={} maps={}", node,
                                 usage.current_bytes, usage.peak_bytes, usage.maps));
  }
  if (!write_file_atomically(path, text)) note("cannot write the live view to " + path);
}

}  // namespace egm
