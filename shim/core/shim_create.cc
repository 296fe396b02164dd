// cuMemCreate of device memory: the program's own VMM handles (PyTorch's
// expandable segments, vLLM, other VMM allocators). The shim rewrites the
// location to a host node and keeps every other property; the program then
// reserves, maps and grants access itself, as it would on the device.
#include <fmt/format.h>

#include "shim/core/caller_library.h"
#include "shim/core/clock.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

Request create_request(size_t size) {
  Request request;
  request.api = Api::kCuMemCreate;
  request.size = size;
  return request;
}

// The device's free and total memory when `device` is the current
// context's device (cuMemGetInfo answers for that one only); zeros (the
// spill rule then lets the real call decide) otherwise.
DeviceMemory memory_of(const DriverApi& driver, int device) {
  CUdevice current = 0;
  DeviceMemory memory;
  if (driver.ctx_get_device == nullptr || driver.mem_get_info == nullptr ||
      driver.ctx_get_device(&current) != CUDA_SUCCESS || static_cast<int>(current) != device ||
      driver.mem_get_info(&memory.free, &memory.total) != CUDA_SUCCESS) {
    return {};
  }
  return memory;
}

// Properties a host node cannot give: compressed memory and the special
// usages (tile pools, hardware decompression) stay on the device.
const char* device_only_feature(const CUmemAllocationProp& prop) {
  if (prop.allocFlags.compressionType != 0) return "compression";
  if (prop.allocFlags.usage != 0) return "usage-flags";
  return nullptr;
}

size_t minimum_granularity(const DriverApi& driver, const CUmemAllocationProp& prop) {
  size_t granularity = 0;
  if (driver.mem_get_allocation_granularity(&granularity, &prop,
                                            CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS) {
    return 0;
  }
  return granularity;
}

}  // namespace

CUresult Shim::create_memory(CUmemGenericAllocationHandle* handle, size_t size,
                             const CUmemAllocationProp& prop, unsigned long long flags,
                             const void* caller) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr) return static_cast<CUresult>(kNotInitialized);
  auto real = [&] { return driver->mem_create(handle, size, &prop, flags); };
  Request request = create_request(size);
  int device = prop.location.id;
  if (!redirecting_ || forked_child_ || handle == nullptr || size == 0 || flags != 0) return real();
  const char* filtered = nullptr;
  if (!config_.api_selected(Api::kCuMemCreate) || size < config_.min_size ||
      size > config_.max_size) {
    filtered = "filter";
  } else if (!config_.device_selected(device)) {
    filtered = "device-filter";
  } else if (const char* feature = device_only_feature(prop)) {
    filtered = feature;
  } else if (called_from_communication_library(caller)) {
    filtered = "communication-library";
  } else if (size_t granule = minimum_granularity(*driver, prop);
             granule == 0 || size % granule != 0) {
    // CUDA refuses it (CUDA_ERROR_INVALID_VALUE): so must the program's call,
    // not succeed on a node whose granularity is finer, nor fail as out of memory.
    filtered = "granularity";
  }
  if (filtered != nullptr) {
    if (log_.enabled(LogLevel::kDebug)) {
      emit(events::decision(request.api, size, device, "device", filtered));
    }
    return real();
  }
  // A device the driver does not know gets the real call's error.
  CUdevice ordinal = 0;
  if (driver->device_get(&ordinal, device) != CUDA_SUCCESS) return real();
  log_start_once();
  std::string trigger = "always";
  bool device_failed = false;
  if (config_.mode == Mode::kSpill) {
    DeviceMemory memory = memory_of(*driver, device);
    SpillDecision decision =
        decide_spill(size, memory, config_.spill_min_size, config_.device_reserve);
    if (decision.try_device) {
      CUresult result = real();
      if (result != CUDA_ERROR_OUT_OF_MEMORY) {
        emit(events::spill_decision(request.api, size, device, "device", decision, memory));
        return result;
      }
      device_failed = true;
      trigger = events::spill_trigger("spill-oom", decision, memory);
    } else {
      emit(events::spill_decision(request.api, size, device, "host", decision, memory));
      trigger = events::spill_trigger("spill-threshold", decision, memory);
    }
  }
  NodeOrder order = placement_->order(nearest_node_of(*driver, device));
  bool next_node = config_.fallback == Fallback::kNextNode ||
                   config_.numa_policy.kind == NumaPolicyKind::kPreferred;
  size_t tries = next_node ? order.nodes.size() : 1;
  for (size_t i = 0; i < tries; ++i) {
    std::string reason = fmt::format("{} trigger={}", i == 0 ? order.reason : "next-node", trigger);
    const char* action = i + 1 < tries ? "next-node" : final_action(device_failed);
    if (try_create_on_node(handle, size, prop, device, order.nodes[i], *driver, reason, action)) {
      return CUDA_SUCCESS;
    }
  }
  if (device_failed || config_.fallback == Fallback::kError) return CUDA_ERROR_OUT_OF_MEMORY;
  return real();
}

// The program rounds its sizes (and aligns its reservations) to the
// device's granularity: the handle goes to the node only when the node's
// granularity is no larger (both are powers of two, so it then divides
// every device-aligned size and address) and divides the size.
bool Shim::try_create_on_node(CUmemGenericAllocationHandle* handle, size_t size,
                              const CUmemAllocationProp& prop, int device, int node,
                              const DriverApi& driver, const std::string& reason,
                              const char* action) {
  Request request = create_request(size);
  CUmemAllocationProp host = prop;
  host.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
  host.location.id = node;
  size_t device_granule = minimum_granularity(driver, prop);
  size_t host_granule = minimum_granularity(driver, host);
  if (host_granule == 0 || device_granule == 0 || host_granule > device_granule ||
      size % host_granule != 0) {
    emit(events::granularity_decision(size, device, node, host_granule, device_granule));
    return false;
  }
  if (!budget_.try_charge(node, size, budget_.limit(node))) {
    log_fallback(request, node, device, "node-limit", "EGM_NODE_LIMIT reached", action);
    return false;
  }
  int64_t start = steady_us();
  // GPUDirect RDMA is a device-memory property the node may refuse: the
  // memory is then created without it (the map line says so), at once on a
  // node that refused it before.
  uint64_t node_bit = node >= 0 && node < 64 ? uint64_t{1} << node : 0;
  const char* dropped = "";
  if (host.allocFlags.gpuDirectRDMACapable != 0 &&
      (rdma_refused_nodes_.load(std::memory_order_relaxed) & node_bit) != 0) {
    host.allocFlags.gpuDirectRDMACapable = 0;
    dropped = " dropped=gpuDirectRDMACapable";
  }
  CUresult result = driver.mem_create(handle, size, &host, 0);
  if (result != CUDA_SUCCESS && result != CUDA_ERROR_OUT_OF_MEMORY &&
      host.allocFlags.gpuDirectRDMACapable != 0) {
    host.allocFlags.gpuDirectRDMACapable = 0;
    result = driver.mem_create(handle, size, &host, 0);
    dropped = " dropped=gpuDirectRDMACapable";
    if (result == CUDA_SUCCESS) rdma_refused_nodes_.fetch_or(node_bit, std::memory_order_relaxed);
  }
  if (result != CUDA_SUCCESS) {
    budget_.uncharge(node, size);
    log_fallback(request, node, device, "create", driver.error_name(result), action);
    return false;
  }
  budget_.note_peak(node);
  budget_.charge_device(device, size);
  budget_.count_allocation(node, device);
  CreatedHandle created;
  created.requested = prop;
  Allocation& allocation = created.allocation;
  allocation.id = table_.reserve_id();
  allocation.requested = size;
  allocation.mapped = size;
  allocation.node = node;
  allocation.device = device;
  allocation.api = Api::kCuMemCreate;
  allocation.handle = *handle;
  allocation.thread = current_thread_id();
  allocation.created_us = wall_clock_us();
  created_.insert(created);
  emit(events::map(allocation, steady_us() - start, reason + dropped, "handle"));
  return true;
}

CUresult Shim::release_memory(CUmemGenericAllocationHandle handle) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr) return static_cast<CUresult>(kNotInitialized);
  bool ours = created_.contains(handle);
  int64_t start = steady_us();
  CUresult result = driver->mem_release(handle);
  if (result != CUDA_SUCCESS || !ours) return result;
  std::optional<CreatedHandle> last = created_.released(handle);
  if (!last) return result;  // a retain's release: the program still holds it
  const Allocation& allocation = last->allocation;
  budget_.uncharge(allocation.node, allocation.mapped);
  budget_.uncharge_device(allocation.device, allocation.mapped);
  emit(events::unmap(allocation, wall_clock_us() - allocation.created_us, steady_us() - start,
                     "cuMemRelease"));
  return result;
}

std::optional<CUmemAllocationProp> Shim::requested_properties(uint64_t handle) const {
  if (config_.physical_pointer_attributes) return std::nullopt;
  return created_.requested(handle);
}

}  // namespace egm
