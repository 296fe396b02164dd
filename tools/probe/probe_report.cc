#include "tools/probe/probe_report.h"

#include "shim/core/host_topology.h"
#include "shim/core/vmm_descriptors.h"

namespace egm::probe {
namespace {

constexpr int kNameLength = 256;
constexpr int kPciBusIdLength = 32;

Queried attribute(const CudaDriver& cuda, CUdevice device, CUdevice_attribute which) {
  int value = 0;
  CUresult result = cuda.device_get_attribute(&value, which, device);
  if (result != CUDA_SUCCESS) return {std::nullopt, cuda.error_name(result)};
  return {value, ""};
}

Queried host_numa_granularity(const CudaDriver& cuda, int node,
                              CUmemAllocationGranularity_flags which) {
  const CUmemAllocationProp prop = egm::host_numa_properties(node);
  size_t granularity = 0;
  CUresult result = cuda.mem_get_allocation_granularity(&granularity, &prop, which);
  if (result != CUDA_SUCCESS) return {std::nullopt, cuda.error_name(result)};
  return {static_cast<long long>(granularity), ""};
}

std::string device_name(const CudaDriver& cuda, CUdevice device) {
  char name[kNameLength] = {};
  bool known = cuda.device_get_name && cuda.device_get_name(name, kNameLength, device) == 0;
  return known ? name : "";
}

std::string pci_bus_id(const CudaDriver& cuda, CUdevice device) {
  char id[kPciBusIdLength] = {};
  bool known =
      cuda.device_get_pci_bus_id && cuda.device_get_pci_bus_id(id, kPciBusIdLength, device) == 0;
  return known ? id : "";
}

// The granularities are asked for the GPU's nearest node, else the first node.
int granularity_node_of(const Queried& host_numa_id, const std::vector<NumaNode>& nodes) {
  if (host_numa_id.value && *host_numa_id.value >= 0) return static_cast<int>(*host_numa_id.value);
  return nodes.empty() ? 0 : nodes.front().id;
}

GpuInfo gpu_info(const CudaDriver& cuda, int ordinal, const std::vector<NumaNode>& nodes) {
  GpuInfo gpu;
  gpu.ordinal = ordinal;
  CUdevice device = 0;
  CUresult result = cuda.device_get(&device, ordinal);
  if (result != CUDA_SUCCESS) {
    Queried unknown{std::nullopt, "cuDeviceGet: " + cuda.error_name(result)};
    gpu.vmm_supported = gpu.host_numa_vmm_supported = gpu.host_numa_id = unknown;
    gpu.minimum_granularity = gpu.recommended_granularity = unknown;
    return gpu;
  }
  gpu.name = device_name(cuda, device);
  gpu.pci_bus_id = pci_bus_id(cuda, device);
  gpu.vmm_supported =
      attribute(cuda, device, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED);
  gpu.host_numa_vmm_supported =
      attribute(cuda, device, CU_DEVICE_ATTRIBUTE_HOST_NUMA_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED);
  gpu.host_numa_id = attribute(cuda, device, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID);
  gpu.granularity_node = granularity_node_of(gpu.host_numa_id, nodes);
  gpu.minimum_granularity =
      host_numa_granularity(cuda, gpu.granularity_node, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  gpu.recommended_granularity =
      host_numa_granularity(cuda, gpu.granularity_node, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
  return gpu;
}

std::vector<NumaNode> numa_nodes() {
  HostTopology topology = read_host_topology();
  std::vector<NumaNode> nodes;
  for (const NodeInfo& info : topology.nodes) {
    NumaNode node{info.id, info.total_bytes, free_bytes_of_node(info.id), {}};
    for (const NodeInfo& to : topology.nodes) {
      node.distances[to.id] = topology.distance_between(info.id, to.id);
    }
    nodes.push_back(node);
  }
  return nodes;
}

// The entry points without which not even the GPUs can be listed.
bool can_enumerate(const CudaDriver& cuda) {
  return cuda.init && cuda.device_get_count && cuda.device_get && cuda.device_get_attribute &&
         cuda.mem_get_allocation_granularity;
}

// Initializes the driver and counts the GPUs; sets report.problem when it cannot.
int gpu_count(const CudaDriver& cuda, ProbeReport& report) {
  CUresult result = cuda.init(0);
  if (result != CUDA_SUCCESS) {
    report.problem = "cuInit failed with " + cuda.error_name(result) +
                     (result == CUDA_ERROR_NO_DEVICE ? ": no CUDA GPU is visible" : "");
    return 0;
  }
  int count = 0;
  result = cuda.device_get_count(&count);
  if (result != CUDA_SUCCESS) {
    report.problem = "cuDeviceGetCount failed with " + cuda.error_name(result);
  } else if (count == 0) {
    report.problem = "no CUDA GPU is visible (cuDeviceGetCount = 0)";
  }
  return count;
}

void probe_gpus(const CudaDriver& cuda, ProbeReport& report) {
  if (cuda.driver_get_version) cuda.driver_get_version(&report.driver_version);
  int count = gpu_count(cuda, report);
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    report.gpus.push_back(gpu_info(cuda, ordinal, report.nodes));
  }
  for (const GpuInfo& gpu : report.gpus) {
    for (const NumaNode& node : report.nodes) {
      report.trials.push_back(run_egm_sequence(cuda, gpu.ordinal, node.id, report.requested_bytes));
    }
  }
  if (count > 0 && report.nodes.empty()) report.problem = "no host NUMA node with memory";
}

}  // namespace

int ProbeReport::working_trials() const {
  int working = 0;
  for (const Trial& trial : trials) working += trial.works() ? 1 : 0;
  return working;
}

std::string ProbeReport::verdict() const {
  if (!problem.empty()) return "EGM placement cannot work here: " + problem + ".";
  std::string pairs = std::to_string(working_trials()) + " of " + std::to_string(trials.size()) +
                      " GPU x NUMA node pairs";
  return egm_works() ? "EGM placement works on " + pairs + "."
                     : "EGM placement does not work: it failed on every one of " +
                           std::to_string(trials.size()) + " GPU x NUMA node pairs.";
}

ProbeReport run_probe(size_t requested_bytes) {
  ProbeReport report;
  report.requested_bytes = requested_bytes;
  report.nodes = numa_nodes();
  report.runtime = cuda_runtime_version();
  LoadedDriver loaded = load_cuda_driver();
  if (!loaded.driver) {
    report.problem = "the CUDA driver library " + std::string(kDriverLibrary) +
                     " cannot be loaded (" + loaded.error + ")";
    return report;
  }
  const CudaDriver& cuda = *loaded.driver;
  report.driver_loaded = true;
  report.missing_entry_points = cuda.missing;
  if (!can_enumerate(cuda)) {
    report.problem = std::string(kDriverLibrary) + " lacks the CUDA virtual memory API";
    return report;
  }
  probe_gpus(cuda, report);
  return report;
}

}  // namespace egm::probe
