#include "shim/core/shim.h"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config/options.h"
#include "shim/core/driver_api.h"
#include "shim/core/host_topology.h"
#include "shim/core/placement.h"
#include "shim/core/process_inspection.h"
#include "shim/core/real_runtime.h"

namespace egm {
namespace {

constexpr const char* kVersion = "0.1.0";

int64_t wall_clock_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t steady_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

pid_t current_thread_id() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

LogSettings log_settings_for(const Config& config) {
  LogSettings settings;
  settings.file_template = config.log_file_template;
  settings.file_level = config.log_level;
  // Without a file, an explicit EGM_LOG_LEVEL applies to stderr.
  if (config.log_file_template.empty() && config.log_level_set) {
    settings.stderr_level = config.log_level;
  }
  return settings;
}

// The CUDA runtime error a real cudaFree would report for a driver failure.
cudaError_t runtime_error_for(CUresult result) {
  switch (result) {
    case CUDA_SUCCESS: return cudaSuccess;
    case CUDA_ERROR_DEINITIALIZED: return cudaErrorCudartUnloading;
    case CUDA_ERROR_INVALID_VALUE: return cudaErrorInvalidValue;
    case CUDA_ERROR_INVALID_CONTEXT: return cudaErrorDeviceUninitialized;
    default: return cudaErrorUnknown;
  }
}

bool valid_managed_flags(unsigned flags) {
  return flags == cudaMemAttachGlobal || flags == cudaMemAttachHost;
}

// The GPU's nearest host node, or -1.
int nearest_node_of(const DriverApi& driver, int device) {
  CUdevice handle = 0;
  int node = -1;
  if (driver.device_get(&handle, device) != CUDA_SUCCESS ||
      driver.device_get_attribute(&node, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, handle) !=
          CUDA_SUCCESS) {
    return -1;
  }
  return node;
}

}  // namespace

cudaError_t call_real_allocation(Api api, void** pointer, size_t size, unsigned flags) {
  RealRuntime& real = real_runtime();
  if (api == Api::kCudaMallocManaged) {
    auto fn = real.malloc_managed.get();
    return fn ? fn(pointer, size, flags) : cudaErrorInitializationError;
  }
  auto fn = real.malloc.get();
  return fn ? fn(pointer, size) : cudaErrorInitializationError;
}

Shim& Shim::instance() {
  static Shim* shim = new Shim();  // never destroyed: frees can arrive during exit
  return *shim;
}

Shim::Shim()
    : parsed_(parse_config(egm_variables_of_process(), read_host_topology())),
      redirecting_(parsed_.config.enable && parsed_.errors.empty()),
      log_(log_settings_for(parsed_.config)) {
  for (const std::string& warning : parsed_.warnings) {
    log_.write(LogLevel::kWarn, "notice", "message=" + logfmt_value(warning));
  }
  for (const ConfigError& error : parsed_.errors) {
    log_.write(LogLevel::kError, "config-error",
               fmt::format("variable={} value={} accepted={} message={}", error.variable,
                           logfmt_value(error.value), logfmt_value(error.accepted),
                           logfmt_value(error.to_string() + (parsed_.config.strict
                                                                 ? "; EGM_STRICT=1: exiting"
                                                                 : "; redirection is off"))));
  }
  if (!parsed_.errors.empty() && parsed_.config.strict) std::_Exit(1);
  if (redirecting_ && !dynamic_runtime_loaded() && executable_has_cuda_code()) {
    log_.write(
        LogLevel::kWarn, "notice",
        "message=" +
            logfmt_value("this program links the CUDA runtime statically (no libcudart.so is "
                         "loaded and the executable carries CUDA code): its allocations cannot be "
                         "redirected; rebuild it with 'nvcc -cudart shared'"));
  }
}

bool Shim::should_redirect(Api api, void** pointer, size_t size, unsigned flags) const {
  if (!redirecting_ || pointer == nullptr || size == 0) return false;
  return api != Api::kCudaMallocManaged || valid_managed_flags(flags);
}

cudaError_t Shim::allocate(Api api, void** pointer, size_t size, unsigned flags) {
  if (should_redirect(api, pointer, size, flags) && try_redirect(api, pointer, size)) {
    return cudaSuccess;
  }
  return call_real_allocation(api, pointer, size, flags);
}

bool Shim::try_redirect(Api api, void** pointer, size_t size) {
  log_start_once();
  const char* why = nullptr;
  const DriverApi* driver = driver_api(&why);
  if (driver == nullptr) {
    log_fallback(api, size, -1, -1, "load-driver", why);
    return false;
  }
  RealRuntime& real = real_runtime();
  int device = 0;
  auto get_device = real.get_device.get();
  if (get_device == nullptr || get_device(&device) != cudaSuccess) {
    log_fallback(api, size, -1, -1, "cudaGetDevice", "no current device");
    return false;
  }
  real.free.get()(nullptr);  // the runtime's idiom to make its context current

  NodeChoice choice = choose_node(parsed_.config, nearest_node_of(*driver, device));
  EgmAllocator allocator(*driver);
  int64_t start = steady_us();
  auto outcome = allocator.map({size, choice.node, device, /*host_access=*/true});
  if (const EgmFailure* failure = std::get_if<EgmFailure>(&outcome)) {
    log_fallback(api, size, choice.node, device, failure->step, driver->error_name(failure->error));
    return false;
  }
  const EgmMapping& egm = std::get<EgmMapping>(outcome);
  Mapping mapping;
  mapping.address = static_cast<uintptr_t>(egm.address);
  mapping.requested = size;
  mapping.mapped = egm.mapped_size;
  mapping.node = choice.node;
  mapping.device = device;
  mapping.api = api;
  mapping.handle = egm.handle;
  mapping.thread = current_thread_id();
  mapping.created_us = wall_clock_us();
  mapping.id = table_.insert(mapping);
  log_map(mapping, steady_us() - start, choice.reason);
  *pointer = reinterpret_cast<void*>(egm.address);
  return true;
}

cudaError_t Shim::release(void* pointer) {
  auto real_free = real_runtime().free.get();
  uintptr_t address = reinterpret_cast<uintptr_t>(pointer);
  if (pointer == nullptr || !table_.may_contain(address)) {
    return real_free ? real_free(pointer) : cudaErrorInitializationError;
  }
  std::optional<Mapping> mapping = table_.remove(address);
  if (!mapping) return real_free ? real_free(pointer) : cudaErrorInitializationError;
  const DriverApi* driver = driver_api(nullptr);  // loaded: it mapped this pointer
  return finish_release(*mapping, EgmAllocator(*driver));
}

cudaError_t Shim::finish_release(const Mapping& mapping, const EgmAllocator& allocator) {
  // cudaFree waits for the device before freeing; so must we.
  auto synchronize = real_runtime().device_synchronize.get();
  cudaError_t sync_error = synchronize ? synchronize() : cudaSuccess;
  int64_t start = steady_us();
  std::optional<EgmFailure> failure =
      allocator.unmap({static_cast<CUdeviceptr>(mapping.address), mapping.mapped, mapping.handle});
  if (failure && failure->error == CUDA_ERROR_DEINITIALIZED) {
    // The driver is already torn down (exit): it took the memory with it.
    return cudaErrorCudartUnloading;
  }
  if (failure) {
    log_.write(LogLevel::kError, "free-error",
               fmt::format("id={} addr={:#x} step={} error={}", mapping.id, mapping.address,
                           failure->step, driver_api(nullptr)->error_name(failure->error)));
    return runtime_error_for(failure->error);
  }
  log_unmap(mapping, steady_us() - start);
  return sync_error;
}

void Shim::log_start_once() {
  if (start_logged_.exchange(true, std::memory_order_relaxed)) return;
  const Config& config = parsed_.config;
  log_.write(LogLevel::kInfo, "start",
             fmt::format("version={} numa_node={} log_level={}", kVersion,
                         config.numa_node ? std::to_string(*config.numa_node) : "nearest",
                         log_level_name(config.log_level)));
}

void Shim::log_fallback(Api api, size_t size, int node, int device, const char* step,
                        const char* error) {
  fallbacks_.fetch_add(1, std::memory_order_relaxed);
  log_.write(LogLevel::kWarn, "fallback",
             fmt::format("api={} requested={} node={} device={} step={} error={} action=real-call",
                         api_name(api), size, node, device, step, logfmt_value(error)));
}

void Shim::log_map(const Mapping& mapping, int64_t map_us, const char* node_reason) {
  log_.write(LogLevel::kInfo, "map",
             fmt::format("id={} api={} addr={:#x} requested={} mapped={} node={} device={} "
                         "handle={:#x} map_us={} reason={}",
                         mapping.id, api_name(mapping.api), mapping.address, mapping.requested,
                         mapping.mapped, mapping.node, mapping.device, mapping.handle, map_us,
                         node_reason));
}

void Shim::log_unmap(const Mapping& mapping, int64_t unmap_us) {
  log_.write(LogLevel::kInfo, "unmap",
             fmt::format("id={} api={} addr={:#x} requested={} mapped={} node={} device={} "
                         "lifetime_us={} unmap_us={}",
                         mapping.id, api_name(mapping.api), mapping.address, mapping.requested,
                         mapping.mapped, mapping.node, mapping.device,
                         wall_clock_us() - mapping.created_us, unmap_us));
}

void Shim::write_exit_summary() {
  uint64_t maps = table_.total_inserted();
  uint64_t fallbacks = fallbacks_.load(std::memory_order_relaxed);
  if (maps == 0 && fallbacks == 0) return;  // the process never asked: leave no trace
  std::vector<Mapping> live = table_.live();
  size_t live_bytes = 0;
  for (const Mapping& mapping : live) live_bytes += mapping.mapped;
  log_.write(LogLevel::kInfo, "summary",
             fmt::format("maps={} unmaps={} fallbacks={} live={} live_bytes={}", maps,
                         table_.total_removed(), fallbacks, live.size(), live_bytes));
  for (const auto& [node, usage] : table_.usage_by_node()) {
    log_.write(LogLevel::kInfo, "node-summary",
               fmt::format("node={} current_bytes={} peak_bytes={} maps={}", node,
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
