// Construction and the allocation path of egm::Shim.
#include "shim/core/shim.h"

#include <fmt/format.h>

#include <cstdlib>
#include <string>

#include "shim/core/clock.h"
#include "shim/core/helper_thread.h"
#include "shim/core/host_topology.h"
#include "shim/core/process_hooks.h"
#include "shim/core/process_inspection.h"
#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/runtime_queries.h"

namespace egm {
namespace {

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

bool valid_managed_flags(unsigned flags) {
  return flags == cudaMemAttachGlobal || flags == cudaMemAttachHost;
}

// The device the request is for: the runtime's current device, or the
// device of the driver's current context.
bool current_device(const Request& request, int& device) {
  if (is_driver_api(request.api)) {
    const DriverApi* driver = driver_api(nullptr);
    CUdevice handle = 0;
    if (driver == nullptr || driver->ctx_get_device == nullptr ||
        driver->ctx_get_device(&handle) != CUDA_SUCCESS) {
      return false;
    }
    device = static_cast<int>(handle);
    return true;
  }
  RuntimeCallScope scope;
  auto get_device = real_runtime().get_device.get();
  return get_device != nullptr && get_device(&device) == cudaSuccess;
}

// The device's free and total memory through the request's layer; zeros
// when unknown.
DeviceMemory device_memory(const Request& request) {
  DeviceMemory memory;
  bool known = false;
  if (is_driver_api(request.api)) {
    const DriverApi* driver = driver_api(nullptr);
    known = driver && driver->mem_get_info &&
            driver->mem_get_info(&memory.free, &memory.total) == CUDA_SUCCESS;
  } else {
    RuntimeCallScope scope;
    auto mem_get_info = real_runtime().mem_get_info.get();
    known = mem_get_info != nullptr && mem_get_info(&memory.free, &memory.total) == cudaSuccess;
  }
  return known ? memory : DeviceMemory{};
}

// Runtime requests: make the runtime's context current (its own idiom), as
// the real call would, before the driver's VMM calls.
void make_runtime_context_current(const Request& request) {
  if (is_driver_api(request.api)) return;
  RuntimeCallScope scope;
  if (auto real_free = real_runtime().free.get()) real_free(nullptr);
}

void clear_runtime_error(const Request& request) {
  if (is_driver_api(request.api)) return;
  RuntimeCallScope scope;
  if (auto get_last_error = real_runtime().get_last_error.get()) get_last_error();
}

// A runtime call that fails reports its error to cudaGetLastError as well.
// When the shim itself fails a runtime call, it has the runtime record the
// same error by a request that cannot succeed and has no side effects.
void record_runtime_out_of_memory(const Request& request) {
  if (is_driver_api(request.api)) return;
  RuntimeCallScope scope;
  void* never = nullptr;
  if (auto real_malloc = real_runtime().malloc.get()) real_malloc(&never, SIZE_MAX);
}

std::atomic<Shim*> created_shim{nullptr};
std::atomic<bool> loaded_by_path{false};

}  // namespace

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

Shim& Shim::instance() {
  // Never destroyed: frees can arrive during exit.
  static Shim* shim = [] {
    Shim* made = new Shim();
    created_shim.store(made, std::memory_order_release);
    return made;
  }();
  return *shim;
}

Shim* Shim::existing() { return created_shim.load(std::memory_order_acquire); }

void Shim::note_loaded_by_path() { loaded_by_path.store(true, std::memory_order_relaxed); }

Shim::Shim()
    : parsed_(load_config(egm_variables_of_process(), read_host_topology())),
      config_(parsed_.config),
      topology_(read_host_topology()),
      redirecting_(config_.enable && config_.mode != Mode::kOff && parsed_.errors.empty()),
      log_(log_settings_for(config_)),
      budget_(config_.node_limits),
      placement_(std::make_unique<NodePolicy>(config_, topology_, free_bytes_of_node)),
      pool_(std::make_unique<HostPool>(
          PoolSettings{config_.pool_limit, config_.suballocate, 0}, budget_,
          [this](const char* event, const Chunk& chunk, const char* reason, int64_t micros) {
            emit(events::chunk(event, chunk, reason, micros));
          })) {
  report_configuration();
  if (redirecting_ && config_.staging) {
    stager_ = new Stager(
        config_.staging_window,
        StagingHooks{[this] { return table_.live_count() > 0; },
                     [this](uintptr_t address) { return table_.may_contain(address); },
                     [this](uintptr_t address) { return allocation_at(address); },
                     [this](const Event& event) { emit(event); },
                     [this] { return log_.enabled(LogLevel::kDebug); }});
    // Opt-in, but it can change results (README "Limits"): say so once.
    emit(events::notice(
        "EGM_STAGING=1 is a preview and unsafe: an integer argument equal to a host-placed "
        "address is rewritten like a pointer (a fault or a wrong result), and a kernel that "
        "stores a pointer it was given, or that communicates with other running kernels through "
        "host-placed memory, can compute a wrong result or hang under it (README, Limits)"));
  }
  // Loaded by path, the shim exists because egm_malloc was called: its
  // memory needs the fork hook (and the fatal-signal line) all the same.
  if (redirecting_ || loaded_by_path.load(std::memory_order_relaxed)) {
    budget_.share_host_wide(ledger_path_for(config_.ledger),
                            [this](const std::string& message) { note(message); });
    install_process_hooks(*this, {!config_.log_file_template.empty(), config_.snapshot_template});
  }
}

void Shim::report_configuration() {
  for (const std::string& warning : parsed_.warnings) note(warning);
  // Preloaded, this runs before main; loaded by path, in the middle of the
  // program, which egm_malloc's nullptr (an out-of-memory) tells instead.
  bool exits = config_.strict && !loaded_by_path.load(std::memory_order_relaxed);
  for (const ConfigError& error : parsed_.errors) emit(events::config_error(error, exits));
  if (!parsed_.errors.empty() && exits) std::_Exit(1);
  if (redirecting_ && !config_.hook_driver && !dynamic_runtime_loaded() &&
      executable_has_cuda_code()) {
    note(
        "this program links the CUDA runtime statically and EGM_HOOK_DRIVER=0: its "
        "allocations cannot be redirected");
  }
}

bool Shim::wants(const Request& request) const {
  if (!redirecting_ || forked_child_ || request.pointer == nullptr || request.size == 0)
    return false;
  if (is_managed(request.api) && !valid_managed_flags(request.flags)) return false;
  return config_.api_selected(request.api) && request.size >= config_.min_size &&
         request.size <= config_.max_size;
}

int Shim::allocate(const Request& request) {
  if (!wants(request)) {
    if (redirecting_ && log_.enabled(LogLevel::kDebug)) {
      emit(events::decision(request.api, request.size, -1, "device", "filter"));
    }
    return call_real_allocation(request);
  }
  if (captured(request)) {
    if (log_.enabled(LogLevel::kDebug)) {
      emit(events::decision(request.api, request.size, -1, "device", "stream-capture"));
    }
    return call_real_allocation(request);
  }
  int device = 0;
  // cudaMallocAsync places memory for the stream's device, which need not
  // be the current one; for a stream the runtime does not know, the real
  // call gives the program its answer.
  bool device_known = false;
  if (request.api == Api::kCudaMallocAsync) {
    std::optional<int> on_stream =
        stream_device(effective_stream(request.stream, request.per_thread_stream));
    device_known = on_stream.has_value();
    device = on_stream.value_or(0);
  } else {
    device_known = current_device(request, device);
  }
  if (!device_known) {
    return call_real_allocation(request);  // the real call reports the runtime's state
  }
  if (!config_.device_selected(device)) {
    if (log_.enabled(LogLevel::kDebug)) {
      emit(events::decision(request.api, request.size, device, "device", "device-filter"));
    }
    return call_real_allocation(request);
  }
  return place(request, device);
}

int Shim::place(const Request& request, int device) {
  log_start_once();
  start_metrics_once();
  drain_pending_frees();
  if (stager_ != nullptr) prepare_staging(request, device);
  std::string trigger = "always";
  bool device_failed = false;  // the real call ran out of memory
  if (config_.mode == Mode::kSpill) {
    std::optional<int> result = try_device_first(request, device, trigger, device_failed);
    if (result) return *result;
  }
  const char* why = nullptr;
  const DriverApi* driver = driver_api(&why);
  if (driver == nullptr) {
    log_fallback(request, -1, device, "load-driver", why, final_action(device_failed));
    return fall_back(request, device_failed);
  }
  make_runtime_context_current(request);
  if (try_host(request, device, *driver, trigger, final_action(device_failed))) {
    if (device_failed) clear_runtime_error(request);  // recovered: as if it never failed
    return kSuccess;
  }
  return fall_back(request, device_failed);
}

// Before the program fills the device (in spill mode it is full by its
// first launch), in the context its allocations are made in.
void Shim::prepare_staging(const Request& request, int device) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr) return;
  make_runtime_context_current(request);
  stager_->prepare_device(device, *driver);
}

// spill mode (spill_rule.h): device memory while it lasts, the reserve kept
// for small requests. nullopt = go to host memory; `trigger` then says why,
// with the device's memory at the decision (the map line carries it).
std::optional<int> Shim::try_device_first(const Request& request, int device, std::string& trigger,
                                          bool& device_failed) {
  DeviceMemory memory = device_memory(request);
  SpillDecision decision =
      decide_spill(request.size, memory, config_.spill_min_size, config_.device_reserve);
  if (!decision.try_device) {
    emit(events::spill_decision(request.api, request.size, device, "host", decision, memory));
    spill_decisions_.add(device, "host", decision.reason);
    trigger = events::spill_trigger("spill-threshold", decision, memory);
    return std::nullopt;
  }
  int result = call_real_allocation(request);
  if (result != kOutOfMemory) {
    emit(events::spill_decision(request.api, request.size, device, "device", decision, memory));
    spill_decisions_.add(device, "device", decision.reason);
    return result;
  }
  // The runtime's error stays recorded unless host memory serves it.
  device_failed = true;
  trigger = events::spill_trigger("spill-oom", decision, memory);
  return std::nullopt;
}

bool Shim::try_host(const Request& request, int device, const DriverApi& driver,
                    const std::string& trigger, const char* last_action) {
  NodeOrder order = placement_->order(nearest_node_of(driver, device));
  bool next_node = config_.fallback == Fallback::kNextNode ||
                   config_.numa_policy.kind == NumaPolicyKind::kPreferred;
  size_t tries = next_node ? order.nodes.size() : 1;
  for (size_t i = 0; i < tries; ++i) {
    std::string reason = fmt::format("{} trigger={}", i == 0 ? order.reason : "next-node", trigger);
    const char* action = i + 1 < tries ? "next-node" : last_action;
    if (try_node(request, device, order.nodes[i], driver, reason, action)) return true;
  }
  return false;
}

bool Shim::try_node(const Request& request, int device, int node, const DriverApi& driver,
                    const std::string& reason, const char* action) {
  VmmSequence allocator(driver);
  auto granularity = allocator.granularity(node, config_.granularity == Granularity::kRecommended);
  if (const EgmFailure* failure = std::get_if<EgmFailure>(&granularity)) {
    log_fallback(request, node, device, failure->step, driver.error_name(failure->error), action);
    return false;
  }
  size_t granule = std::get<size_t>(granularity);
  ChunkKey key{node, device, config_.host_access || is_managed(request.api)};
  int64_t start = steady_us();
  learn_device_count_once(driver);
  auto placed = pool_->acquire(driver, key, request.size, granule, budget_.limit(node));
  if (const EgmFailure* failure = std::get_if<EgmFailure>(&placed)) {
    const char* error = std::string_view(failure->step) == "node-limit"
                            ? "EGM_NODE_LIMIT reached"
                            : driver.error_name(failure->error);
    log_fallback(request, node, device, failure->step, error, action);
    return false;
  }
  const PoolBlock& placement = std::get<PoolBlock>(placed);
  Allocation mapping = allocation_of(placement, key);
  mapping.requested = request.size;
  mapping.api = request.api;
  mapping.thread = current_thread_id();
  mapping.created_us = wall_clock_us();
  CUcontext context = nullptr;
  if (driver.ctx_get_current && driver.ctx_get_current(&context) == CUDA_SUCCESS) {
    mapping.context = context;
  }
  mapping.id = table_.insert(mapping);
  budget_.count_allocation(node, device);
  emit(events::map(mapping, steady_us() - start, reason, placement.source));
  *request.pointer = reinterpret_cast<void*>(placement.address);
  if (request.pitch != nullptr) *request.pitch = round_up(request.width, kPitchAlignment);
  start_prefill_once(driver, key, granule);
  return true;
}

// egm_malloc: asked for host memory explicitly, so EGM_MODE and the filters
// do not apply; where it cannot be had, the caller gets nullptr (PyTorch
// raises its out-of-memory error), never device memory.
void* Shim::place_on_host(size_t size, int device, int node) {
  void* pointer = nullptr;
  if (size == 0) return nullptr;
  Request request{Api::kEgmMalloc, &pointer, size};
  if (forked_child_) {  // CUDA is unusable in a forked child, and the pool is the parent's
    log_fallback(request, node, device, "forked-child", "CUDA is unusable after fork", "error");
    return nullptr;
  }
  log_start_once();
  if (!parsed_.errors.empty()) {
    log_fallback(request, node, device, "configuration", "invalid EGM_* settings", "error");
    return nullptr;
  }
  if (node >= 0 && !topology_.has_node(node)) {
    log_fallback(request, node, device, "node", "not a NUMA node with memory", "error");
    return nullptr;
  }
  drain_pending_frees();
  const char* why = nullptr;
  const DriverApi* driver = driver_api(&why);
  if (driver == nullptr) {
    log_fallback(request, node, device, "load-driver", why, "error");
    return nullptr;
  }
  make_runtime_context_current(request);
  bool placed = node >= 0 ? try_node(request, device, node, *driver, "requested trigger=explicit",
                                     "error")
                          : try_host(request, device, *driver, "explicit", "error");
  return placed ? pointer : nullptr;
}

// EGM_PEER_ACCESS=all needs the device count, known once CUDA is up. Known
// only once read (a failed read is tried again at the next allocation); the
// pool grants the access to chunks mapped meanwhile as well.
void Shim::learn_device_count_once(const DriverApi& driver) {
  if (!config_.peer_access_all || device_count_known_.load(std::memory_order_acquire)) return;
  int count = 0;
  if (!driver.device_get_count || driver.device_get_count(&count) != CUDA_SUCCESS || count <= 0) {
    return;
  }
  pool_->grant_every_device(driver, count >= 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1);
  device_count_known_.store(true, std::memory_order_release);
}

void Shim::peer_access_enabled(int owner, int accessor) {
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr || forked_child_ || !redirecting_) return;
  std::optional<EgmFailure> failure = pool_->grant_peer(*driver, owner, accessor);
  emit(
      events::peer_access(owner, accessor, failure ? driver->error_name(failure->error) : nullptr));
}

// EGM_POOL_PREALLOC: fill the cache from a background thread, on the
// caller's context, once the program has shown which device it uses.
void Shim::start_prefill_once(const DriverApi& driver, const ChunkKey& key, size_t granularity) {
  if (config_.pool_prealloc == 0 || prefill_started_.exchange(true)) return;
  CUcontext context = nullptr;
  if (!driver.ctx_get_current || !driver.ctx_set_current ||
      driver.ctx_get_current(&context) != CUDA_SUCCESS || context == nullptr) {
    return;
  }
  start_helper_thread([this, &driver, key, granularity, context] {
    driver.ctx_set_current(context);
    pool_->prefill(driver, key, granularity, config_.pool_prealloc, budget_.limit(key.node));
  });
}

// What happens once host placement has failed everywhere it may be tried.
const char* Shim::final_action(bool device_failed) const {
  return config_.fallback == Fallback::kError || device_failed ? "error" : "real-call";
}

int Shim::fall_back(const Request& request, bool device_failed) {
  if (device_failed) return kOutOfMemory;  // the runtime recorded it already
  if (config_.fallback == Fallback::kError) {
    record_runtime_out_of_memory(request);
    return kOutOfMemory;
  }
  return call_real_allocation(request);
}

}  // namespace egm
