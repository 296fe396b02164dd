#include "tools/probe/report_output.h"

#include <cstdio>

namespace egm::probe {
namespace {

using nlohmann::json;

std::string queried_text(const Queried& queried) {
  return queried.value ? std::to_string(*queried.value) : "unknown (" + queried.error + ")";
}

std::string flag_text(const Queried& queried) {
  if (!queried.value) return queried_text(queried);
  return *queried.value != 0 ? "yes" : "no";
}

std::string granularity_text(const Queried& queried) {
  return queried.value ? bytes_text(static_cast<size_t>(*queried.value)) : queried_text(queried);
}

std::string or_unknown(const std::string& text) { return text.empty() ? "unknown" : text; }

std::string driver_text(const ProbeReport& report) {
  std::string text = "CUDA driver: " + std::string(kDriverLibrary);
  if (!report.driver_loaded) return text + " not loadable\n";
  if (report.driver_version > 0) {
    text += ", version " + version_text(report.driver_version) + " (" +
            std::to_string(report.driver_version) + ")";
  }
  text += "\n";
  for (const std::string& missing : report.missing_entry_points) {
    text += "  lacks " + missing + "\n";
  }
  if (!report.runtime) return text + "CUDA runtime: no libcudart loadable (optional)\n";
  return text + "CUDA runtime: " + report.runtime->library + ", version " +
         version_text(report.runtime->version) + " (" + std::to_string(report.runtime->version) +
         ")\n";
}

std::string gpu_text(const GpuInfo& gpu) {
  return "GPU " + std::to_string(gpu.ordinal) + ": " + or_unknown(gpu.name) + "\n" +
         "  PCI bus id:                          " + or_unknown(gpu.pci_bus_id) + "\n" +
         "  virtual memory management:           " + flag_text(gpu.vmm_supported) + "\n" +
         "  host NUMA virtual memory management: " + flag_text(gpu.host_numa_vmm_supported) + "\n" +
         "  nearest host NUMA node:              " + queried_text(gpu.host_numa_id) + "\n" +
         "  HOST_NUMA granularity (node " + std::to_string(gpu.granularity_node) +
         "):    minimum " + granularity_text(gpu.minimum_granularity) + ", recommended " +
         granularity_text(gpu.recommended_granularity) + "\n";
}

std::string nodes_text(const std::vector<NumaNode>& nodes) {
  std::string text = "NUMA nodes with memory:\n";
  for (const NumaNode& node : nodes) {
    text += "  node " + std::to_string(node.id) + ": " + bytes_text(node.total_bytes) + " total, " +
            bytes_text(node.free_bytes) + " free\n";
  }
  text += "  distances:\n        ";
  char cell[16];
  for (const NumaNode& node : nodes) {
    std::snprintf(cell, sizeof cell, "%5d", node.id);
    text += cell;
  }
  for (const NumaNode& from : nodes) {
    std::snprintf(cell, sizeof cell, "\n  %5d:", from.id);
    text += cell;
    for (const auto& [to, distance] : from.distances) {
      std::snprintf(cell, sizeof cell, "%5d", distance);
      text += cell;
    }
  }
  return text + "\n";
}

std::string step_text(const Step& step) {
  char line[512];
  std::string name = step.cleanup ? step.name + " (cleanup)" : step.name;
  if (step.status == StepStatus::kSkipped) {
    std::snprintf(line, sizeof line, "  %-8s %s\n", status_name(step.status), name.c_str());
  } else {
    std::snprintf(line, sizeof line, "  %-8s %-40s %-30s %10.1f us\n", status_name(step.status),
                  name.c_str(), step.result.c_str(), step.time_us);
  }
  return line;
}

std::string trial_text(const Trial& trial) {
  std::string text = "EGM sequence, GPU " + std::to_string(trial.gpu) + " x node " +
                     std::to_string(trial.node) + " (" + bytes_text(trial.mapped_bytes) +
                     "): " + (trial.works() ? "works" : "FAILS") + "\n";
  for (const Step& step : trial.steps) text += step_text(step);
  return text;
}

json queried_json(const Queried& queried) {
  return queried.value ? json(*queried.value) : json(nullptr);
}

// The queries that failed, by field name.
json query_errors_json(const GpuInfo& gpu) {
  json errors = json::object();
  std::pair<const char*, const Queried*> fields[] = {
      {"virtual_memory_management_supported", &gpu.vmm_supported},
      {"host_numa_virtual_memory_management_supported", &gpu.host_numa_vmm_supported},
      {"host_numa_id", &gpu.host_numa_id},
      {"minimum_granularity", &gpu.minimum_granularity},
      {"recommended_granularity", &gpu.recommended_granularity}};
  for (const auto& [name, queried] : fields) {
    if (!queried->value) errors[name] = queried->error;
  }
  return errors;
}

json gpu_json(const GpuInfo& gpu) {
  return {
      {"ordinal", gpu.ordinal},
      {"name", gpu.name},
      {"pci_bus_id", gpu.pci_bus_id},
      {"virtual_memory_management_supported", queried_json(gpu.vmm_supported)},
      {"host_numa_virtual_memory_management_supported", queried_json(gpu.host_numa_vmm_supported)},
      {"host_numa_id", queried_json(gpu.host_numa_id)},
      {"granularity",
       {{"node", gpu.granularity_node},
        {"minimum", queried_json(gpu.minimum_granularity)},
        {"recommended", queried_json(gpu.recommended_granularity)}}},
      {"query_errors", query_errors_json(gpu)}};
}

json node_json(const NumaNode& node) {
  json distances = json::object();
  for (const auto& [to, distance] : node.distances) distances[std::to_string(to)] = distance;
  return {{"node", node.id},
          {"total_bytes", node.total_bytes},
          {"free_bytes", node.free_bytes},
          {"distances", distances}};
}

json step_json(const Step& step) {
  return {{"step", step.name},
          {"status", status_name(step.status)},
          {"result", step.result},
          {"time_us", step.time_us},
          {"cleanup", step.cleanup}};
}

json trial_json(const Trial& trial) {
  json steps = json::array();
  for (const Step& step : trial.steps) steps.push_back(step_json(step));
  const Step* failure = trial.first_failure();
  return {{"gpu", trial.gpu},
          {"node", trial.node},
          {"requested_bytes", trial.requested_bytes},
          {"mapped_bytes", trial.mapped_bytes},
          {"works", trial.works()},
          {"failed_step", failure ? json(failure->name) : json(nullptr)},
          {"steps", steps}};
}

json driver_json(const ProbeReport& report) {
  return {{"library", kDriverLibrary},
          {"loaded", report.driver_loaded},
          {"version", report.driver_version > 0 ? json(report.driver_version) : json(nullptr)},
          {"missing_entry_points", report.missing_entry_points}};
}

json runtime_json(const ProbeReport& report) {
  if (!report.runtime) return nullptr;
  return {{"library", report.runtime->library}, {"version", report.runtime->version}};
}

template <typename Item, typename Render>
json array_of(const std::vector<Item>& items, Render render) {
  json array = json::array();
  for (const Item& item : items) array.push_back(render(item));
  return array;
}

}  // namespace

std::string bytes_text(size_t bytes) {
  constexpr const char* kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) value /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, value == static_cast<long long>(value) ? "%.0f %s" : "%.1f %s",
                value, kUnits[unit]);
  return text;
}

std::string report_text(const ProbeReport& report) {
  std::string text = driver_text(report);
  for (const GpuInfo& gpu : report.gpus) text += gpu_text(gpu);
  text += nodes_text(report.nodes);
  for (const Trial& trial : report.trials) text += trial_text(trial);
  return text + report.verdict() + "\n";
}

nlohmann::json report_json(const ProbeReport& report) {
  return {{"driver", driver_json(report)},
          {"runtime", runtime_json(report)},
          {"gpus", array_of(report.gpus, gpu_json)},
          {"numa_nodes", array_of(report.nodes, node_json)},
          {"requested_bytes", report.requested_bytes},
          {"trials", array_of(report.trials, trial_json)},
          {"egm_works", report.egm_works()},
          {"problem", report.problem.empty() ? json(nullptr) : json(report.problem)},
          {"verdict", report.verdict()}};
}

}  // namespace egm::probe
