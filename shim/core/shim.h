// The process-wide state of egm-shim and the operations the overrides call.
// Created at load and never destroyed, so that frees arriving during exit
// still find it.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "shim/core/budget.h"
#include "shim/core/created_handles.h"
#include "shim/core/deferred_frees.h"
#include "shim/core/driver_api.h"
#include "shim/core/vmm_sequence.h"
#include "shim/core/events.h"
#include "shim/core/host_pool.h"
#include "shim/core/log.h"
#include "shim/core/metrics_writer.h"
#include "shim/core/allocation_table.h"
#include "shim/core/node_policy.h"
#include "shim/core/process_hooks.h"
#include "shim/core/request.h"
#include "shim/core/spill_rule.h"
#include "shim/core/stager.h"

namespace egm {

// The GPU's nearest host node, or -1.
int nearest_node_of(const DriverApi& driver, int device);

class Shim final : public ProcessHookTarget {
 public:
  static Shim& instance();
  // The instance if instance() has run, else null (never creates it).
  static Shim* existing();
  // libegm.so was loaded by path (dlopen, e.g. by PyTorch's pluggable
  // allocator), not preloaded: it intercepts nothing, so the shim is made at
  // the first egm_* call, and EGM_STRICT never ends the process. Call before
  // instance().
  static void note_loaded_by_path();

  // Any allocation call: host memory where the policy says so and the EGM
  // sequence succeeds; otherwise as EGM_FALLBACK says. Returns the
  // cudaError_t or CUresult value the caller gets.
  int allocate(const Request& request);

  // cudaFree / cuMemFree: unmaps the shim's own pointers, forwards the rest.
  cudaError_t free_runtime(void* pointer);
  CUresult free_driver(CUdeviceptr pointer);
  // cudaFreeAsync: the unmap waits until the stream's earlier work is done.
  cudaError_t free_async(void* pointer, cudaStream_t stream, bool per_thread_stream);

  // cuMemFreeAsync: as cudaFreeAsync, with the driver's events.
  CUresult free_async_driver(CUdeviceptr pointer, CUstream stream, bool per_thread_stream);

  // ---- cuMemCreate of device memory (shim_create.cc) ----
  // A device-located pinned cuMemCreate: on a host node where the policy
  // says so, every other property kept; otherwise the real call. `caller`:
  // the override's return address (communication libraries keep theirs).
  CUresult create_memory(CUmemGenericAllocationHandle* handle, size_t size,
                         const CUmemAllocationProp& prop, unsigned long long flags,
                         const void* caller);
  // cuMemRelease: the real call; the program's last release of a rewritten
  // handle ends its record (event=unmap api=cuMemCreate).
  CUresult release_memory(CUmemGenericAllocationHandle handle);
  // Lock-free: no rewritten handle is live (or, in a forked child, none is
  // the child's to answer for).
  bool no_created_handles() const { return forked_child_ || created_.empty(); }
  // cuMemRetainAllocationHandle handed out `handle` once more.
  void created_handle_retained(uint64_t handle) { created_.retained(handle); }
  // The program's own properties of a rewritten handle (EGM_POINTER_ATTRIBUTES=requested).
  std::optional<CUmemAllocationProp> requested_properties(uint64_t handle) const;

  // ---- the shim's allocations as CUDA's queries see them (shim_queries.cc) ----
  // The allocation holding `address` (interior addresses too). Lock-free
  // "no" for addresses outside every allocation's bounds.
  std::optional<Allocation> allocation_at(uintptr_t address) const;
  // How [start, start + count) relates to the shim's allocations.
  RangeOwner range_owner(uintptr_t start, size_t count, Allocation* owner) const;
  // Runs `update` on the hints of `mapping`'s allocation, under the table's lock.
  template <typename Update>
  void update_hints(const Allocation& mapping, Update update) {
    table_.update_hints(mapping.address, update);
  }
  // EGM_POINTER_ATTRIBUTES=physical: queries get the driver's answers.
  bool physical_pointer_attributes() const { return config_.physical_pointer_attributes; }
  // The number of GPUs (0 if unknown), for checking locations.
  int device_count() const;
  // A debug line for a managed-memory call the shim answered itself.
  void log_emulated(const char* call, const Allocation& mapping, const std::string& details,
                    int result);

  // cudaMemGetInfo / cuMemGetInfo, plus the host budget with EGM_MEMINFO=device+host.
  int memory_info(bool driver_layer, size_t* free, size_t* total);

  // The program enabled peer access: `accessor` may now use memory made for
  // `owner`, so every chunk of `owner` gets an access grant for `accessor`.
  void peer_access_enabled(int owner, int accessor);

  // cudaDeviceReset destroyed every allocation of `device`: the shim's too,
  // so that a later cudaFree of one gets what the runtime says of it.
  void device_reset(int device);

  // Whether driver-layer calls are the shim's to handle (not the runtime's own).
  bool hooks_driver() const { return config_.hook_driver; }

  // At unload (library destructors, CUDA may still be up): unmaps the
  // deferred frees that are done. The summary itself is written later, after
  // every other library's destructors (process_hooks.h), and calls no CUDA.
  void finish_frees_before_exit();
  void write_exit_summary() override;

  // The live view: the current table as log lines, written to `path`
  // atomically (a temporary file renamed into place).
  void write_snapshot(const std::string& path) override;
  size_t live_count() const override { return table_.live_count() + created_.live_count(); }

  // In a child after fork(): CUDA is unusable there, and the parent's locks
  // may be held forever; the child only passes calls through.
  void on_fork_child() override;

  // A warning line for the user.
  void note(const std::string& message) override;

  // ---- libegm.so's own entry points (egm_malloc, shim_placed.cc) ----
  // Host memory for `device`, on `node` (-1: EGM_NUMA_POLICY's choice), asked
  // for explicitly: EGM_MODE and the filters do not apply, EGM_NODE_LIMIT and
  // the pool do. nullptr on failure, with one fallback line.
  void* place_on_host(size_t size, int device, int node);
  // Frees what place_on_host returned, as cudaFree does (the device is
  // synchronized first). False for a pointer that is not the shim's.
  bool free_placed(void* pointer);
  // The live table, the totals and the budget as one JSON object.
  std::string stats_json() const;
  // Whether `node` is a host NUMA node with memory.
  bool host_node_exists(int node) const { return topology_.has_node(node); }
  // ---- inter-process handles (ipc.h) ----
  // The chunk behind `mapping`, marked exported (never cached again).
  std::optional<Chunk> export_chunk(const Allocation& mapping);
  // A new POSIX fd for exported chunk `chunk_id`, for a peer process.
  CUresult chunk_fd(uint64_t chunk_id, int* fd);
  bool forked_child() const { return forked_child_; }
  // ---- EGM_STAGING (stager.h) ----
  // The stager, or nullptr when staging is off (also in a forked child):
  // the launch overrides pass straight through then.
  Stager* stager() const { return forked_child_ ? nullptr : stager_; }
  // cuMemRetainAllocationHandle on `address`: the program holds the physical
  // memory and may map or export it elsewhere, so it is never staged.
  void allocation_handle_retained(uintptr_t address);
  // Writes an IPC event line.
  void log_event(const Event& event) { emit(event); }

 private:
  Shim();
  void report_configuration();
  // Cheap checks that need no CUDA call: the hot path of requests that stay.
  bool wants(const Request& request) const;
  int place(const Request& request, int device);
  // EGM_STAGING: the device's staging window, at its first intercepted allocation.
  void prepare_staging(const Request& request, int device);
  // A stream-ordered request on a capturing stream belongs to the graph.
  bool captured(const Request& request) const;
  std::optional<int> try_device_first(const Request& request, int device, std::string& trigger,
                                      bool& device_failed);
  bool try_host(const Request& request, int device, const DriverApi& driver,
                const std::string& trigger, const char* last_action);
  bool try_node(const Request& request, int device, int node, const DriverApi& driver,
                const std::string& reason, const char* action_on_failure);
  int fall_back(const Request& request, bool device_failed);
  // cuMemCreate on one host node; the program's properties in `prop`.
  bool try_create_on_node(CUmemGenericAllocationHandle* handle, size_t size,
                          const CUmemAllocationProp& prop, int device, int node,
                          const DriverApi& driver, const std::string& reason, const char* action);

  std::vector<Allocation> live_allocations() const;
  std::optional<Allocation> take_mapping(uintptr_t address);
  int unmap_now(const Allocation& mapping);
  void drain_pending_frees();
  cudaError_t synchronize_for_free(const Allocation& mapping);
  std::pair<size_t, size_t> host_budget() const;

  // Writes an event line (events.h) at its level.
  void emit(const Event& event) { log_.write(event.level, event.name, event.fields); }
  void log_start_once();
  // Counts the fallback, then says it.
  void log_fallback(const Request& request, int node, int device, const char* step,
                    const char* error, const char* action);
  const char* final_action(bool device_failed) const;
  void learn_device_count_once(const DriverApi& driver);
  void start_prefill_once(const DriverApi& driver, const ChunkKey& key, size_t granularity);
  // EGM_METRICS_FILE (shim_report.cc): the writer starts at the first
  // redirected request; the text comes from the same counters as the summary.
  void start_metrics_once();
  std::string metrics_text() const;

  ParsedConfig parsed_;
  const Config& config_;
  HostTopology topology_;
  bool redirecting_ = false;
  EventLog log_;
  AllocationTable table_;
  CreatedHandles created_;  // cuMemCreate handles placed on a host node
  // Nodes (bit = node, < 64) that refused gpuDirectRDMACapable once: later
  // handles drop it before the first try instead of after a failed one.
  std::atomic<uint64_t> rdma_refused_nodes_{0};
  Budget budget_;
  std::unique_ptr<NodePolicy> placement_;
  std::unique_ptr<HostPool> pool_;
  std::atomic<bool> prefill_started_{false};
  std::atomic<bool> device_count_known_{false};
  std::atomic<uint64_t> fallbacks_{0};
  std::atomic<bool> start_logged_{false};
  // Set in a forked child (single-threaded then): from then on the child
  // takes no lock of the shim's and touches none of the parent's state.
  bool forked_child_ = false;
  DeferredFrees deferred_;
  std::atomic<bool> capture_noted_{false};
  SpillDecisionCounts spill_decisions_;
  MetricsWriter metrics_;
  Stager* stager_ = nullptr;  // EGM_STAGING=1 only; never destroyed (launches during exit)
};

}  // namespace egm
