#include "shim/core/events.h"

#include <fmt/format.h>

#include "shim/core/log.h"

namespace egm::events {
namespace {

// What map, unmap and leak lines say of the allocation first.
std::string allocation_fields(const Allocation& mapping) {
  return fmt::format("id={} api={} addr={:#x} requested={} mapped={} node={} device={}", mapping.id,
                     api_name(mapping.api), mapping.address, mapping.requested, mapping.mapped,
                     mapping.node, mapping.device);
}

// What stage, unstage and staging decision lines say of the allocation first.
std::string staged_fields(const Allocation& mapping) {
  return fmt::format("id={} address={:#x} bytes={} device={}", mapping.id, mapping.address,
                     mapping.requested, mapping.device);
}

std::string map_fields(const Allocation& mapping) {
  return fmt::format("{} handle={:#x} chunk={}", allocation_fields(mapping), mapping.handle,
                     mapping.chunk_id);
}

// The device's memory is the whole device's, from cuMemGetInfo.
std::string spill_fields(const SpillDecision& decision, const DeviceMemory& memory) {
  return fmt::format("device_free={} device_total={} spill_min_size={} device_reserve={}",
                     memory.free, memory.total, decision.spill_min_size, decision.device_reserve);
}

std::string usage_fields(const char* key, int id, const NodeUsage& usage) {
  return fmt::format("{}={} current_bytes={} peak_bytes={} maps={}", key, id, usage.current_bytes,
                     usage.peak_bytes, usage.maps);
}

}  // namespace

Event start(std::string_view version, std::string_view rank, std::string_view host,
            std::string_view settings) {
  return {LogLevel::kInfo, "start",
          fmt::format("version={} rank={} host={} {}", version, logfmt_value(rank),
                      logfmt_value(host), settings)};
}

Event notice(std::string_view message) {
  // Notices quote paths and values the user set: a 4 KiB path must not make
  // a 4 KiB line (escaping may grow each byte to four).
  constexpr size_t kShownBytes = 400;
  if (message.size() <= kShownBytes) {
    return {LogLevel::kWarn, "notice", "message=" + logfmt_value(message)};
  }
  std::string shown = fmt::format("{}... ({} bytes more)", message.substr(0, kShownBytes),
                                  message.size() - kShownBytes);
  return {LogLevel::kWarn, "notice", "message=" + logfmt_value(shown)};
}

Event config_error(const ConfigError& error, bool strict) {
  std::string outcome = strict ? "; EGM_STRICT=1: exiting" : "; redirection is off";
  return {LogLevel::kError, "config-error",
          fmt::format("variable={} value={} accepted={} message={}", error.variable,
                      logfmt_value(error.value), logfmt_value(error.accepted),
                      logfmt_value(error.without_value() + outcome))};
}

Event decision(Api api, size_t requested, int device, const char* placement, const char* reason) {
  return {LogLevel::kDebug, "decision",
          fmt::format("api={} requested={} device={} placement={} reason={}", api_name(api),
                      requested, device, placement, reason)};
}

Event spill_decision(Api api, size_t requested, int device, const char* placement,
                     const SpillDecision& decision, const DeviceMemory& memory) {
  return {
      LogLevel::kInfo, "decision",
      fmt::format("api={} requested={} device={} placement={} reason={} {}", api_name(api),
                  requested, device, placement, decision.reason, spill_fields(decision, memory))};
}

std::string spill_trigger(const char* trigger, const SpillDecision& decision,
                          const DeviceMemory& memory) {
  return fmt::format("{} spill_reason={} {}", trigger, decision.reason,
                     spill_fields(decision, memory));
}

Event granularity_decision(size_t requested, int device, int node, size_t host_granularity,
                           size_t device_granularity) {
  return {LogLevel::kInfo, "decision",
          fmt::format("api={} requested={} device={} placement=device reason=host-granularity "
                      "node={} host_granularity={} device_granularity={}",
                      api_name(Api::kCuMemCreate), requested, device, node, host_granularity,
                      device_granularity)};
}

Event fallback(Api api, size_t requested, int node, int device, const char* step, const char* error,
               const char* action) {
  return {
      LogLevel::kWarn, "fallback",
      fmt::format("api={} requested={} node={} device={} step={} error={} action={}", api_name(api),
                  requested, node, device, step, logfmt_value(error ? error : "unknown"), action)};
}

Event map(const Allocation& mapping, int64_t map_us, std::string_view reason, const char* source) {
  return {
      LogLevel::kInfo, "map",
      fmt::format("{} source={} map_us={} reason={}", map_fields(mapping), source, map_us, reason)};
}

Event snapshot_map(const Allocation& mapping) {
  return {LogLevel::kInfo, "map", map_fields(mapping) + " source=snapshot"};
}

Event unmap(const Allocation& mapping, int64_t lifetime_us, int64_t unmap_us, const char* via) {
  return {LogLevel::kInfo, "unmap",
          fmt::format("{} lifetime_us={} unmap_us={} via={}", allocation_fields(mapping),
                      lifetime_us, unmap_us, via)};
}

Event free_error(const Allocation& mapping, const char* step, const char* error) {
  return {
      LogLevel::kError, "free-error",
      fmt::format("id={} addr={:#x} step={} error={}", mapping.id, mapping.address, step, error)};
}

// Chunks are the pinned memory behind user allocations: mapped once, reused
// through the pool, unmapped when evicted or trimmed.
Event chunk(const char* event, const Chunk& chunk, const char* reason, int64_t micros) {
  bool map = std::string_view(event) == "map";
  return {
      LogLevel::kInfo, map ? "chunk-map" : "chunk-unmap",
      fmt::format("chunk={} addr={:#x} bytes={} node={} device={} handle={:#x} {}={} "
                  "reason={}",
                  chunk.id, chunk.mapping.address, chunk.mapping.mapped_size, chunk.node,
                  chunk.device, chunk.mapping.handle, map ? "map_us" : "unmap_us", micros, reason)};
}

Event ipc(const char* name, std::string_view fields, const char* error) {
  if (error == nullptr) return {LogLevel::kInfo, name, fmt::format("{} result=ok", fields)};
  return {LogLevel::kWarn, name, fmt::format("{} result={}", fields, error)};
}

Event peer_access(int owner, int accessor, const char* error) {
  return {error ? LogLevel::kError : LogLevel::kInfo, "peer-access",
          fmt::format("device={} peer={} result={}", owner, accessor, error ? error : "ok")};
}

Event device_reset(int device, size_t released) {
  return {LogLevel::kInfo, "device-reset", fmt::format("device={} released={}", device, released)};
}

Event managed_call(const char* call, const Allocation& mapping, std::string_view details, int result) {
  return {LogLevel::kDebug, "managed-call",
          fmt::format("call={} id={} addr={:#x} {} result={}", call, mapping.id, mapping.address,
                      details, result)};
}

Event stage_window(int device, size_t bytes, uintptr_t address) {
  return {LogLevel::kInfo, "stage-window",
          fmt::format("device={} bytes={} address={:#x}", device, bytes, address)};
}

Event stage(const Allocation& mapping) {
  return {LogLevel::kInfo, "stage",
          fmt::format("{} launches=1", staged_fields(mapping))};
}

Event staged_launch(uintptr_t function, std::string_view name, std::string_view rewritten) {
  return {LogLevel::kDebug, "staged-launch",
          fmt::format("function={:#x} name={} rewritten={}", function, name, rewritten)};
}

Event unstage(const Allocation& mapping, uint64_t stagings, uint64_t staged_bytes) {
  return {LogLevel::kInfo, "unstage",
          fmt::format("{} stagings={} staged_bytes={}", staged_fields(mapping), stagings,
                      staged_bytes)};
}

Event staging_decision(const Allocation& mapping, const char* reason) {
  return {LogLevel::kInfo, "decision",
          fmt::format("staging=no {} reason={}", staged_fields(mapping), reason)};
}

Event staging_function_decision(uintptr_t function, const char* reason) {
  return {LogLevel::kInfo, "decision",
          fmt::format("staging=no function={:#x} reason={}", function, reason)};
}

Event staging_summary(uint64_t staged_launches, uint64_t staged_bytes, uint64_t refused_launches,
                      std::string_view refused_by_reason) {
  return {LogLevel::kInfo, "staging-summary",
          fmt::format("staged_launches={} staged_bytes={} refused_launches={}{}", staged_launches,
                      staged_bytes, refused_launches, refused_by_reason)};
}

Event summary(const Totals& totals) {
  return {LogLevel::kInfo, "summary",
          fmt::format("maps={} unmaps={} fallbacks={} live={} live_bytes={} pending_frees={} "
                      "pool_cached_bytes={}",
                      totals.maps, totals.unmaps, totals.fallbacks, totals.live, totals.live_bytes,
                      totals.pending_frees, totals.pool_cached_bytes)};
}

Event snapshot(const Totals& totals) {
  return {LogLevel::kInfo, "snapshot",
          fmt::format("live={} live_bytes={} pool_cached_bytes={}", totals.live, totals.live_bytes,
                      totals.pool_cached_bytes)};
}

Event node_summary(int node, const NodeUsage& usage) {
  return {LogLevel::kInfo, "node-summary", usage_fields("node", node, usage)};
}

Event device_summary(int device, const NodeUsage& usage) {
  return {LogLevel::kInfo, "device-summary", usage_fields("device", device, usage)};
}

Event leak(const Allocation& mapping, int64_t age_us) {
  return {LogLevel::kInfo, "leak", fmt::format("{} age_us={}", allocation_fields(mapping), age_us)};
}

}  // namespace egm::events
