// Whole host-memory chunks (a handle mapped, with access set, at a reserved
// address) and a bounded cache of freed ones, so that the ≈0.3 ms-per-2 MiB
// EGM sequence is paid once per chunk rather than once per allocation.
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <variant>
#include <vector>

#include "shim/core/vmm_sequence.h"

namespace egm {

struct Chunk {
  uint64_t id = 0;
  HostMapping mapping;  // address, mapped_size, handle
  int node = 0;
  int device = 0;
  bool host_access = true;
};

// Where a chunk can be reused: same node, same GPU access, same host access.
struct ChunkKey {
  int node;
  int device;
  bool host_access;
  bool operator<(const ChunkKey& other) const {
    return std::tie(node, device, host_access) <
           std::tie(other.node, other.device, other.host_access);
  }
};

class ChunkCache {
 public:
  // `limit`: bytes the cache may hold; 0 disables it.
  explicit ChunkCache(size_t limit) : limit_(limit) {}

  // A cached chunk of at least `size` bytes and at most 25% more (so reuse
  // never wastes more than a fresh mapping's rounding would), best fit.
  std::optional<Chunk> take(const ChunkKey& key, size_t size);

  // Keeps `chunk` for reuse; returns the chunks evicted (oldest first) to
  // stay within the limit, which the caller unmaps. A chunk larger than the
  // limit is returned at once.
  std::vector<Chunk> put(const Chunk& chunk);

  // Empties the cache down to `bytes`; returns what the caller must unmap.
  std::vector<Chunk> trim_to(size_t bytes);

  size_t cached_bytes() const;
  size_t limit() const { return limit_; }

 private:
  using Age = std::list<std::pair<ChunkKey, uint64_t>>;  // oldest first: key, chunk id
  struct Entry {
    Chunk chunk;
    Age::iterator age;
  };
  std::vector<Chunk> evict_locked(size_t target);

  const size_t limit_;
  mutable std::mutex mutex_;
  std::map<ChunkKey, std::multimap<size_t, Entry>> by_key_;  // size -> entry
  Age age_;
  size_t cached_bytes_ = 0;
};

}  // namespace egm
