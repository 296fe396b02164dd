// Every line the shim writes to its log, one function per event: its level,
// its name and its fields, in the format docs/DESIGN.md describes (egm-inspect
// and the tests parse it). Pure formatting: the Shim decides when to write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/apis.h"
#include "config/config.h"
#include "config/values.h"
#include "shim/core/budget.h"
#include "shim/core/chunk_cache.h"
#include "shim/core/allocation_table.h"
#include "shim/core/spill_rule.h"

namespace egm {

struct Event {
  LogLevel level;
  const char* name;    // event=NAME
  std::string fields;  // the rest of the line
};

namespace events {

// `settings`: the effective options, as the options table prints them.
// `rank` and `host` (log_identity.h) let egm-inspect attribute the log
// whatever its file is called.
Event start(std::string_view version, std::string_view rank, std::string_view host,
            std::string_view settings);
Event notice(std::string_view message);
// `strict`: EGM_STRICT=1, the process exits; else redirection is off.
Event config_error(const ConfigError& error, bool strict);

// Where a request went and why: filters at debug level; in spill mode the
// rule's decision at info level, with the device's memory at the decision.
Event decision(Api api, size_t requested, int device, const char* placement, const char* reason);
Event spill_decision(Api api, size_t requested, int device, const char* placement,
                     const SpillDecision& decision, const DeviceMemory& memory);
// A map line's trigger in spill mode: "spill-threshold spill_reason=... device_free=...".
std::string spill_trigger(const char* trigger, const SpillDecision& decision,
                          const DeviceMemory& memory);
// A cuMemCreate handle kept on the device: the node's granularity does not
// divide the device's (the program's sizes and alignments) or the size.
Event granularity_decision(size_t requested, int device, int node, size_t host_granularity,
                           size_t device_granularity);
Event fallback(Api api, size_t requested, int node, int device, const char* step, const char* error,
               const char* action);

// A user allocation placed in host memory; `reason` carries the trigger.
Event map(const Allocation& mapping, int64_t map_us, std::string_view reason, const char* source);
// A live allocation in the live view: a map line egm-inspect replays.
Event snapshot_map(const Allocation& mapping);
Event unmap(const Allocation& mapping, int64_t lifetime_us, int64_t unmap_us, const char* via);
Event free_error(const Allocation& mapping, const char* step, const char* error);
// `event`: "map" or "unmap" (chunk-map, chunk-unmap).
Event chunk(const char* event, const Chunk& chunk, const char* reason, int64_t micros);

// `error`: nullptr when the grant succeeded.
Event peer_access(int owner, int accessor, const char* error);
Event device_reset(int device, size_t released);
// cudaIpcGetMemHandle / cudaIpcOpenMemHandle / cudaIpcCloseMemHandle on the
// shim's memory: `name` is "ipc-export", "ipc-open" or "ipc-close";
// `error` nullptr on success (info), else the failure (warn level).
Event ipc(const char* name, std::string_view fields, const char* error);
Event managed_call(const char* call, const Allocation& mapping, std::string_view details, int result);

// EGM_STAGING (stager.h). The window of a GPU, made once.
Event stage_window(int device, size_t bytes, uintptr_t address);
// The first staging of an allocation (later ones are counted, not logged).
Event stage(const Allocation& mapping);
// A staged allocation freed: how often it was staged and the bytes copied in.
Event unstage(const Allocation& mapping, uint64_t stagings, uint64_t staged_bytes);
// Debug: one staged launch, the kernel's name and each rewritten word as
// p<param>+<offset>:<old>-><new>.
Event staged_launch(uintptr_t function, std::string_view name, std::string_view rewritten);
// A launch referencing `mapping` was not staged (once per allocation and reason).
Event staging_decision(const Allocation& mapping, const char* reason);
// A function whose parameter layout the driver does not give (once per handle).
Event staging_function_decision(uintptr_t function, const char* reason);
// The exit summary's staging counts; `refused_by_reason`: " refused_REASON=N..." pairs.
Event staging_summary(uint64_t staged_launches, uint64_t staged_bytes, uint64_t refused_launches,
                      std::string_view refused_by_reason);

// The exit summary and the live view.
struct Totals {
  uint64_t maps = 0;
  uint64_t unmaps = 0;
  uint64_t fallbacks = 0;
  size_t live = 0;
  size_t live_bytes = 0;
  size_t pending_frees = 0;
  size_t pool_cached_bytes = 0;
};
Event summary(const Totals& totals);
Event snapshot(const Totals& totals);  // live, live_bytes, pool_cached_bytes
Event node_summary(int node, const NodeUsage& usage);
Event device_summary(int device, const NodeUsage& usage);
Event leak(const Allocation& mapping, int64_t age_us);

}  // namespace events
}  // namespace egm
