#include "shim/core/host_pool.h"

#include <string_view>

#include "shim/core/clock.h"

namespace egm {

Allocation allocation_of(const PoolBlock& block, const ChunkKey& key) {
  Allocation allocation;
  allocation.address = block.address;
  allocation.mapped = block.size;
  allocation.node = key.node;
  allocation.device = key.device;
  allocation.handle = block.chunk.mapping.handle;
  allocation.chunk_id = block.chunk.id;
  allocation.chunk_address = static_cast<uintptr_t>(block.chunk.mapping.address);
  allocation.in_block = std::string_view(block.source) == "slab";
  allocation.host_access = key.host_access;
  return allocation;
}

HostPool::HostPool(PoolSettings settings, Budget& budget, ChunkObserver observer)
    : settings_(settings),
      budget_(budget),
      observer_(std::move(observer)),
      cache_(settings.cache_limit) {}

std::variant<PoolBlock, EgmFailure> HostPool::acquire(const DriverApi& driver, const ChunkKey& key,
                                                      size_t size, size_t granularity, size_t cap) {
  size_t block_size = settings_.suballocate ? block_size_for(size, granularity) : 0;
  if (block_size != 0) {
    if (std::optional<Block> block = slabs_.allocate(key, block_size)) {
      Chunk chunk{block->chunk_id, {}, key.node, key.device, key.host_access};
      chunk.mapping.address = static_cast<CUdeviceptr>(block->chunk_address);
      return PoolBlock{block->address, block->size, chunk, "slab"};
    }
  }
  size_t chunk_size = block_size != 0 ? granularity : round_up(size, granularity);
  if (chunk_size == 0) return EgmFailure{"round-up", CUDA_ERROR_INVALID_VALUE};
  const char* source = "fresh";
  auto chunk = chunk_for(driver, key, chunk_size, granularity, cap, source);
  if (const EgmFailure* failure = std::get_if<EgmFailure>(&chunk)) return *failure;
  const Chunk& got = std::get<Chunk>(chunk);
  if (block_size != 0) {
    Block block = slabs_.add_slab(key, block_size, got);
    return PoolBlock{block.address, block.size, got, "slab"};
  }
  return PoolBlock{static_cast<uintptr_t>(got.mapping.address), got.mapping.mapped_size, got,
                   source};
}

// A cached chunk if one fits, else a fresh one; on failure the cache is
// emptied (pinned memory handed back to the system) and it is tried again.
std::variant<Chunk, EgmFailure> HostPool::chunk_for(const DriverApi& driver, const ChunkKey& key,
                                                    size_t size, size_t granularity, size_t cap,
                                                    const char*& source) {
  if (std::optional<Chunk> cached = cache_.take(key, size)) {
    source = "pool";
    return *cached;
  }
  source = "fresh";
  auto chunk = fresh_chunk(driver, key, size, granularity, cap);
  if (std::holds_alternative<EgmFailure>(chunk) && cache_.cached_bytes() > 0) {
    trim(driver, "pressure");
    chunk = fresh_chunk(driver, key, size, granularity, cap);
  }
  return chunk;
}

std::variant<Chunk, EgmFailure> HostPool::fresh_chunk(const DriverApi& driver, const ChunkKey& key,
                                                      size_t size, size_t granularity, size_t cap) {
  uint64_t peers = 0;
  {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    peers = peers_of(key.device);
  }
  if (!budget_.try_charge(key.node, size, cap))
    return EgmFailure{"node-limit", CUDA_ERROR_OUT_OF_MEMORY};
  int64_t start = steady_us();
  auto mapped = VmmSequence(driver).map({size, key.node, key.device, key.host_access, peers}, size,
                                         granularity);
  if (const EgmFailure* failure = std::get_if<EgmFailure>(&mapped)) {
    budget_.uncharge(key.node, size);
    return *failure;
  }
  budget_.note_peak(key.node);
  budget_.charge_device(key.device, size);
  Chunk chunk{next_chunk_id_.fetch_add(1, std::memory_order_relaxed), std::get<HostMapping>(mapped),
              key.node, key.device, key.host_access};
  register_chunk(driver, chunk, peers);
  observer_("map", chunk, "fresh", steady_us() - start);
  return chunk;
}

void HostPool::grant_every_device(const DriverApi& driver, uint64_t devices) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  settings_.every_device = devices;
  for (auto& [id, entry] : registry_) grant_missing(driver, entry);
}

void HostPool::grant_missing(const DriverApi& driver, Registered& entry) {
  uint64_t missing = peers_of(entry.chunk.device) & ~entry.peers;
  for (int peer = 0; peer < 64; ++peer) {
    if ((missing >> peer & 1) && !VmmSequence(driver).grant(entry.chunk.mapping, peer)) {
      entry.peers |= uint64_t{1} << peer;
    }
  }
}

uint64_t HostPool::peers_of(int device) {
  uint64_t peers = settings_.every_device;
  auto enabled = enabled_peers_.find(device);
  if (enabled != enabled_peers_.end()) peers |= enabled->second;
  return peers & ~(uint64_t{1} << device);
}

// Peers enabled while the chunk was being mapped get their access now.
void HostPool::register_chunk(const DriverApi& driver, const Chunk& chunk, uint64_t peers) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  Registered& entry = registry_[chunk.id] = {chunk, peers};
  grant_missing(driver, entry);
}

std::optional<EgmFailure> HostPool::grant_peer(const DriverApi& driver, int device, int peer) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  if (peer < 0 || peer >= 64 || peer == device) return std::nullopt;
  enabled_peers_[device] |= uint64_t{1} << peer;
  std::optional<EgmFailure> first_failure;
  for (auto& [id, entry] : registry_) {
    if (entry.chunk.device != device || peer == device || (entry.peers >> peer & 1)) continue;
    std::optional<EgmFailure> failure = VmmSequence(driver).grant(entry.chunk.mapping, peer);
    if (!failure) entry.peers |= uint64_t{1} << peer;
    if (failure && !first_failure) first_failure = failure;
  }
  return first_failure;
}

std::optional<EgmFailure> HostPool::release(const DriverApi& driver, const Allocation& mapping) {
  if (mapping.in_block) {
    std::optional<Chunk> emptied =
        slabs_.free({mapping.address, mapping.mapped, mapping.chunk_id, mapping.chunk_address});
    return emptied ? give_back(driver, *emptied) : std::nullopt;
  }
  Chunk chunk{mapping.chunk_id,
              {static_cast<CUdeviceptr>(mapping.address), mapping.mapped, mapping.handle},
              mapping.node,
              mapping.device,
              mapping.host_access};
  return give_back(driver, chunk);
}

std::optional<EgmFailure> HostPool::give_back(const DriverApi& driver, const Chunk& chunk) {
  bool exported = false;
  {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    auto found = registry_.find(chunk.id);
    exported = found != registry_.end() && found->second.exported;
  }
  // A peer process may still map it: reused, it would see another
  // allocation's bytes. Unmapped, the peer keeps the old memory alive.
  if (exported) return unmap_chunks(driver, {chunk}, "exported");
  return unmap_chunks(driver, cache_.put(chunk), "evict");
}

std::optional<Chunk> HostPool::mark_exported(uint64_t id) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  auto found = registry_.find(id);
  if (found == registry_.end()) return std::nullopt;
  found->second.exported = true;
  return found->second.chunk;
}

CUresult HostPool::export_fd(const DriverApi& driver, uint64_t id, int* fd) {
  // Under the lock: unmap_chunks() erases a chunk before it releases the
  // handle, so the handle exported here is still alive.
  std::lock_guard<std::mutex> lock(registry_mutex_);
  auto found = registry_.find(id);
  if (found == registry_.end() || !found->second.exported) return CUDA_ERROR_INVALID_HANDLE;
  if (!found->second.chunk.mapping.shareable) return CUDA_ERROR_NOT_SUPPORTED;
  if (driver.mem_export_to_shareable_handle == nullptr) return CUDA_ERROR_NOT_SUPPORTED;
  return driver.mem_export_to_shareable_handle(fd, found->second.chunk.mapping.handle,
                                               CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
}

void HostPool::trim(const DriverApi& driver, const char* reason) {
  unmap_chunks(driver, cache_.trim_to(0), reason);
}

void HostPool::prefill(const DriverApi& driver, const ChunkKey& key, size_t granularity,
                       size_t bytes, size_t cap) {
  for (size_t filled = 0;
       filled + granularity <= bytes && cache_.cached_bytes() + granularity <= cache_.limit();
       filled += granularity) {
    auto chunk = fresh_chunk(driver, key, granularity, granularity, cap);
    if (std::holds_alternative<EgmFailure>(chunk)) return;
    unmap_chunks(driver, cache_.put(std::get<Chunk>(chunk)), "evict");
  }
}

std::optional<EgmFailure> HostPool::unmap_chunks(const DriverApi& driver,
                                                 const std::vector<Chunk>& chunks,
                                                 const char* reason) {
  std::optional<EgmFailure> first_failure;
  for (const Chunk& chunk : chunks) {
    {
      // Out of the registry first: a peer grant must never reach a range
      // that is being unmapped (or, once freed, reserved by someone else).
      std::lock_guard<std::mutex> lock(registry_mutex_);
      registry_.erase(chunk.id);
    }
    int64_t start = steady_us();
    std::optional<EgmFailure> failure = VmmSequence(driver).unmap(chunk.mapping);
    budget_.uncharge(chunk.node, chunk.mapping.mapped_size);
    budget_.uncharge_device(chunk.device, chunk.mapping.mapped_size);
    observer_("unmap", chunk, failure ? failure->step : reason, steady_us() - start);
    if (failure && !first_failure) first_failure = failure;
  }
  return first_failure;
}

}  // namespace egm
