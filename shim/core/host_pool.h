// Host memory for user allocations: fresh EGM chunks, chunks reused from the
// cache, and blocks carved from shared chunks for requests below the granule.
// The pool owns the chunks and charges them to the budget; the mapping table
// records which user allocation lives in which chunk.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "shim/core/budget.h"
#include "shim/core/chunk_cache.h"
#include "shim/core/driver_api.h"
#include "shim/core/vmm_sequence.h"
#include "shim/core/allocation_table.h"
#include "shim/core/slab_allocator.h"

namespace egm {

struct PoolSettings {
  size_t cache_limit = 0;     // EGM_POOL_LIMIT
  bool suballocate = true;    // EGM_SUBALLOC
  uint64_t every_device = 0;  // EGM_PEER_ACCESS=all: bit d = device d gets access at creation
};

// A user allocation placed in host memory.
struct PoolBlock {
  uintptr_t address = 0;
  size_t size = 0;     // bytes the user owns: the block, or the whole chunk
  Chunk chunk;         // the backing chunk
  const char* source;  // "fresh", "pool" (cached chunk) or "slab" (a block)
};

// The allocation-table entry of a block the pool handed out for `key`:
// where it is and the chunk behind it, what release() needs back. The
// caller adds the request's own fields (api, requested size, thread, time).
Allocation allocation_of(const PoolBlock& block, const ChunkKey& key);

// Chunk events, for the log: "map" or "unmap" with a reason.
using ChunkObserver =
    std::function<void(const char* event, const Chunk& chunk, const char* reason, int64_t micros)>;

class HostPool {
 public:
  HostPool(PoolSettings settings, Budget& budget, ChunkObserver observer);

  // `cap`: the most bytes the node may have pinned (EGM_NODE_LIMIT).
  std::variant<PoolBlock, EgmFailure> acquire(const DriverApi& driver, const ChunkKey& key,
                                              size_t size, size_t granularity, size_t cap);

  // `peer` may now use `device`'s memory (peer access was enabled): every
  // chunk made for `device`, in use or cached, gets access for `peer`.
  // Returns the first failure.
  std::optional<EgmFailure> grant_peer(const DriverApi& driver, int device, int peer);

  // The user freed `mapping`: its block or chunk goes back to the pool.
  // Returns the first unmap failure, if any.
  std::optional<EgmFailure> release(const DriverApi& driver, const Allocation& mapping);

  // EGM_PEER_ACCESS=all, once the device count is known: chunks mapped
  // before get the access too.
  void grant_every_device(const DriverApi& driver, uint64_t devices);

  // Unmaps every cached chunk (exit, or memory pressure).
  void trim(const DriverApi& driver, const char* reason);

  // Maps `bytes` of granule-sized chunks into the cache (EGM_POOL_PREALLOC),
  // within the node's `cap` (EGM_NODE_LIMIT).
  void prefill(const DriverApi& driver, const ChunkKey& key, size_t granularity, size_t bytes,
               size_t cap);

  size_t cached_bytes() const { return cache_.cached_bytes(); }

  // IPC (ipc.h). Marks chunk `id` exported: from then on it is unmapped when
  // freed, never cached for reuse. nullopt if no such chunk is mapped.
  std::optional<Chunk> mark_exported(uint64_t id);
  // A new POSIX fd for exported chunk `id` (the caller closes it):
  // CUDA_ERROR_INVALID_HANDLE once the chunk is unmapped.
  CUresult export_fd(const DriverApi& driver, uint64_t id, int* fd);

 private:
  struct Registered {
    Chunk chunk;
    uint64_t peers;
    bool exported = false;  // an IPC handle was made for it
  };
  std::variant<Chunk, EgmFailure> fresh_chunk(const DriverApi& driver, const ChunkKey& key,
                                              size_t size, size_t granularity, size_t cap);
  std::variant<Chunk, EgmFailure> chunk_for(const DriverApi& driver, const ChunkKey& key,
                                            size_t size, size_t granularity, size_t cap,
                                            const char*& source);
  uint64_t peers_of(int device);  // registry_mutex_ held
  // Grants what peers_of() says and the chunk lacks; registry_mutex_ held.
  void grant_missing(const DriverApi& driver, Registered& entry);
  void register_chunk(const DriverApi& driver, const Chunk& chunk, uint64_t peers);
  std::optional<EgmFailure> give_back(const DriverApi& driver, const Chunk& chunk);
  std::optional<EgmFailure> unmap_chunks(const DriverApi& driver, const std::vector<Chunk>& chunks,
                                         const char* reason);

  PoolSettings settings_;
  Budget& budget_;  // charged per chunk
  ChunkObserver observer_;
  ChunkCache cache_;
  SlabAllocator slabs_;
  std::atomic<uint64_t> next_chunk_id_{1};
  // Every mapped chunk (in use, in a slab or cached) and who may access it.
  std::mutex registry_mutex_;
  std::map<uint64_t, Registered> registry_;
  std::map<int, uint64_t> enabled_peers_;  // device -> peers the program enabled
};

}  // namespace egm
