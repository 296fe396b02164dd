// What egm::Shim reports beyond single events: the start line, the exit
// summary and the live view. The lines themselves are formatted in events.cc.
#include <fmt/format.h>

#include "config/version.h"
#include "shim/core/clock.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

// The counts both the summary and the live view begin with.
events::Totals totals_of(const std::vector<Allocation>& live, size_t pool_cached_bytes) {
  events::Totals totals;
  totals.live = live.size();
  for (const Allocation& mapping : live) totals.live_bytes += mapping.mapped;
  totals.pool_cached_bytes = pool_cached_bytes;
  return totals;
}

}  // namespace

void Shim::log_start_once() {
  if (start_logged_.exchange(true, std::memory_order_relaxed)) return;
  // Every option with a printer in the options table, log_level last.
  emit(events::start(kVersion, parsed_.summary()));
}

void Shim::log_fallback(const Request& request, int node, int device, const char* step,
                        const char* error, const char* action) {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  emit(events::fallback(request.api, request.size, node, device, step, error, action));
}

void Shim::write_exit_summary() {
  if (forked_child_) return;  // the parent owns the mappings and reports them
  budget_.leave_host_wide();  // the process is ending (bytes still mapped stay counted till it is gone)
  uint64_t maps = table_.total_inserted();
  uint64_t fallbacks = fallbacks_.load(std::memory_order_relaxed);
  if (maps == 0 && fallbacks == 0) return;  // the process never asked: leave no trace
  std::vector<Allocation> live = table_.live();
  events::Totals totals = totals_of(live, pool_->cached_bytes());
  totals.maps = maps;
  totals.unmaps = table_.total_removed();
  totals.fallbacks = fallbacks;
  totals.pending_frees = deferred_.count();
  emit(events::summary(totals));
  for (const auto& [node, usage] : budget_.usage_by_node()) emit(events::node_summary(node, usage));
  for (const auto& [device, usage] : budget_.usage_by_device()) {
    emit(events::device_summary(device, usage));
  }
  int64_t now = wall_clock_us();
  for (const Allocation& mapping : live) emit(events::leak(mapping, now - mapping.created_us));
}

void Shim::note(const std::string& message) { emit(events::notice(message)); }

void Shim::on_fork_child() {
  forked_child_ = true;
  log_.restart_after_fork();
  budget_.forget_ledger_after_fork();
}

void Shim::write_snapshot(const std::string& path) {
  std::vector<Allocation> live = table_.live();
  auto line = [](const Event& event) { return log_line(event.level, event.name, event.fields); };
  std::string text = line(events::snapshot(totals_of(live, pool_->cached_bytes())));
  // Live mappings as map lines: egm-inspect replays a snapshot like a log.
  for (const Allocation& mapping : live) text += line(events::snapshot_map(mapping));
  for (const auto& [node, usage] : budget_.usage_by_node()) {
    text += line(events::node_summary(node, usage));
  }
  if (!write_file_atomically(path, text)) note("cannot write the live view to " + path);
}

}  // namespace egm
