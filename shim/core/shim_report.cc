// What egm::Shim reports beyond single events: the start line, the exit
// summary and the live view. The lines themselves are formatted in events.cc.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>

#include "config/version.h"
#include "shim/core/clock.h"
#include "shim/core/log_identity.h"
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

// The table's allocations, then the rewritten cuMemCreate handles.
std::vector<Allocation> Shim::live_allocations() const {
  std::vector<Allocation> live = table_.live();
  std::vector<Allocation> created = created_.live();
  live.insert(live.end(), created.begin(), created.end());
  return live;
}

void Shim::log_start_once() {
  if (start_logged_.exchange(true, std::memory_order_relaxed)) return;
  // Every option with a printer in the options table, in its order.
  emit(events::start(kVersion, rank_of_this_process(), host_of_this_process(), parsed_.summary()));
}

void Shim::log_fallback(const Request& request, int node, int device, const char* step,
                        const char* error, const char* action) {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  emit(events::fallback(request.api, request.size, node, device, step, error, action));
}

void Shim::write_exit_summary() {
  if (forked_child_) return;  // the parent owns the mappings and reports them
  metrics_.write_final();
  budget_.leave_host_wide();  // the process is ending (bytes still mapped stay counted till it is gone)
  uint64_t maps = table_.total_inserted();
  uint64_t fallbacks = fallbacks_.load(std::memory_order_relaxed);
  if (maps == 0 && fallbacks == 0) return;  // the process never asked: leave no trace
  std::vector<Allocation> live = live_allocations();
  events::Totals totals = totals_of(live, pool_->cached_bytes());
  totals.maps = maps;  // the table's ids count the created handles too
  totals.unmaps = table_.total_removed() + created_.total_removed();
  totals.fallbacks = fallbacks;
  totals.pending_frees = deferred_.count();
  emit(events::summary(totals));
  if (stager_ != nullptr) emit(stager_->summary_event());
  for (const auto& [node, usage] : budget_.usage_by_node()) emit(events::node_summary(node, usage));
  for (const auto& [device, usage] : budget_.usage_by_device()) {
    emit(events::device_summary(device, usage));
  }
  int64_t now = wall_clock_us();
  for (const Allocation& mapping : live) emit(events::leak(mapping, now - mapping.created_us));
}

void Shim::start_metrics_once() {
  if (config_.metrics_template.empty() || metrics_.started()) return;
  metrics_.start(
      expand_path_template(config_.metrics_template, getpid()),
      std::chrono::milliseconds(config_.metrics_interval_ms), [this] { return metrics_text(); },
      [this](const std::string& line) { note(line); });
}

// Copies of the counters, each taken under its owner's lock for a moment.
std::string Shim::metrics_text() const {
  ProcessMetrics metrics;
  metrics.pid = getpid();
  auto copy = [](const std::map<int, NodeUsage>& from, std::map<int, PinnedUsage>& to) {
    for (const auto& [id, usage] : from) {
      // A node tried and refused (a cap) holds nothing: the log never names it.
      if (usage.peak_bytes == 0 && usage.maps == 0) continue;
      to[id] = {usage.current_bytes, usage.peak_bytes, usage.maps};
    }
  };
  copy(budget_.usage_by_node(), metrics.nodes);
  copy(budget_.usage_by_device(), metrics.devices);
  metrics.pool_cached_bytes = pool_->cached_bytes();
  metrics.live_allocations = table_.live_count();
  metrics.maps = table_.total_inserted();
  metrics.unmaps = table_.total_removed();
  metrics.fallbacks = fallbacks_.load(std::memory_order_relaxed);
  metrics.spill_decisions = spill_decisions_.counts();
  if (stager_ != nullptr) {
    StagingCounts counts = stager_->counts();
    metrics.staging = true;
    metrics.staged_launches = counts.staged_launches;
    metrics.staged_bytes = counts.staged_bytes;
    for (size_t i = 0; i < counts.refused.size(); ++i) {
      if (counts.refused[i] > 0) {
        metrics.staging_refusals[refusal_name(static_cast<StagingRefusal>(i))] = counts.refused[i];
      }
    }
  }
  return prometheus_text({metrics});
}

void Shim::note(const std::string& message) { emit(events::notice(message)); }

void Shim::on_fork_child() {
  forked_child_ = true;
  metrics_.forget_in_child();
  log_.restart_after_fork();
  budget_.forget_ledger_after_fork();
}

void Shim::write_snapshot(const std::string& path) {
  std::vector<Allocation> live = live_allocations();
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
