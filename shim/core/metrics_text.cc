#include "shim/core/metrics_text.h"

#include <fmt/format.h>

#include <functional>

namespace egm {
namespace {

// A label value as the exposition format quotes it.
std::string escaped(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

struct Family {
  const char* name;
  const char* type;  // gauge or counter
  const char* help;
};

class Writer {
 public:
  // `samples` appends "{labels} value" lines for one process through `add`.
  using Add = std::function<void(const std::string& labels, uint64_t value)>;
  void family(const Family& family, const std::vector<ProcessMetrics>& processes,
              const std::function<void(const ProcessMetrics&, const Add&)>& samples) {
    std::string lines;
    for (const ProcessMetrics& process : processes) {
      samples(process, [&](const std::string& labels, uint64_t value) {
        lines += fmt::format("{}{{pid=\"{}\"{}}} {}\n", family.name, process.pid, labels, value);
      });
    }
    if (lines.empty()) return;
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, family.help, family.name,
                         family.type);
    text_ += lines;
  }
  std::string take() { return std::move(text_); }

 private:
  std::string text_;
};

std::string label(const char* key, int64_t value) { return fmt::format(",{}=\"{}\"", key, value); }

template <typename Field>
void usage_samples(const std::map<int, PinnedUsage>& usage, const char* key, Field field,
                   const Writer::Add& add) {
  for (const auto& [id, entry] : usage) add(label(key, id), entry.*field);
}

// Pinned bytes only where known.
template <typename Field>
void pinned_samples(const ProcessMetrics& process, const std::map<int, PinnedUsage>& usage,
                    const char* key, Field field, const Writer::Add& add) {
  if (process.pinned_known) usage_samples(usage, key, field, add);
}

}  // namespace

std::string prometheus_text(const std::vector<ProcessMetrics>& processes) {
  Writer out;
  using P = const ProcessMetrics&;
  using A = const Writer::Add&;
  out.family({"egm_node_pinned_bytes", "gauge",
              "Host memory the shim has mapped on the NUMA node (chunks in use or cached)."},
             processes, [](P p, A add) {
               pinned_samples(p, p.nodes, "node", &PinnedUsage::current_bytes, add);
             });
  out.family({"egm_node_pinned_peak_bytes", "gauge",
              "Highest egm_node_pinned_bytes since the process started."},
             processes,
             [](P p, A add) { pinned_samples(p, p.nodes, "node", &PinnedUsage::peak_bytes, add); });
  out.family({"egm_node_allocations_total", "counter",
              "User allocations placed in host memory on the NUMA node."},
             processes,
             [](P p, A add) { usage_samples(p.nodes, "node", &PinnedUsage::maps, add); });
  out.family({"egm_device_pinned_bytes", "gauge",
              "Host memory the shim has mapped for the GPU (chunks in use or cached)."},
             processes, [](P p, A add) {
               pinned_samples(p, p.devices, "device", &PinnedUsage::current_bytes, add);
             });
  out.family({"egm_device_pinned_peak_bytes", "gauge",
              "Highest egm_device_pinned_bytes since the process started."},
             processes, [](P p, A add) {
               pinned_samples(p, p.devices, "device", &PinnedUsage::peak_bytes, add);
             });
  out.family({"egm_device_allocations_total", "counter",
              "User allocations of the GPU placed in host memory."},
             processes,
             [](P p, A add) { usage_samples(p.devices, "device", &PinnedUsage::maps, add); });
  out.family({"egm_pool_cached_bytes", "gauge",
              "Host memory kept mapped in the shim's pool after frees, for reuse."},
             processes, [](P p, A add) {
               if (p.pool_cached_bytes) add("", *p.pool_cached_bytes);
             });
  out.family({"egm_live_allocations", "gauge", "User allocations in host memory not yet freed."},
             processes, [](P p, A add) { add("", p.live_allocations); });
  out.family({"egm_maps_total", "counter", "User allocations placed in host memory."}, processes,
             [](P p, A add) { add("", p.maps); });
  out.family({"egm_unmaps_total", "counter", "Host-placed user allocations freed."}, processes,
             [](P p, A add) { add("", p.unmaps); });
  out.family({"egm_fallbacks_total", "counter",
              "Host placements that failed or hit a cap and took EGM_FALLBACK."},
             processes, [](P p, A add) { add("", p.fallbacks); });
  out.family({"egm_spill_decisions_total", "counter",
              "EGM_MODE=spill: requests the spill rule kept on the device or sent to host "
              "memory, by reason."},
             processes, [](P p, A add) {
               for (const auto& [key, count] : p.spill_decisions) {
                 add(fmt::format("{},placement=\"{}\",reason=\"{}\"", label("device", key.device),
                                 escaped(key.placement), escaped(key.reason)),
                     count);
               }
             });
  out.family({"egm_staged_launches_total", "counter",
              "EGM_STAGING: kernel launches whose host-placed allocations were copied into HBM."},
             processes, [](P p, A add) {
               if (p.staging) add("", p.staged_launches);
             });
  out.family({"egm_staged_bytes_total", "counter",
              "EGM_STAGING: bytes copied into the staging window (each staged allocation, each "
              "launch)."},
             processes, [](P p, A add) {
               if (p.staging) add("", p.staged_bytes);
             });
  out.family({"egm_staging_refused_launches_total", "counter",
              "EGM_STAGING: launches referencing host-placed memory that were not staged, by "
              "reason."},
             processes, [](P p, A add) {
               for (const auto& [reason, count] : p.staging_refusals) {
                 add(fmt::format(",reason=\"{}\"", escaped(reason)), count);
               }
             });
  return out.take();
}

}  // namespace egm
