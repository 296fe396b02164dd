// Sub-allocation of requests smaller than the granule: each 2 MiB chunk (a
// "slab") is cut into equal blocks of one size class; a slab goes back when
// its last block is freed. Classes are multiples of 256 bytes (cudaMalloc's
// alignment) spaced at most 25% apart, so a block wastes at most 25% above
// 1 KiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "shim/core/chunk_cache.h"

namespace egm {

// The size class (block size) for `size`, or 0 when it needs a whole chunk.
size_t block_size_for(size_t size, size_t chunk_size);

struct Block {
  uintptr_t address = 0;
  size_t size = 0;  // the block (size class), not the request
  uint64_t chunk_id = 0;
  uintptr_t chunk_address = 0;
};

class SlabAllocator {
 public:
  // A free block of `block_size` on a slab with `key`, or nullopt when
  // every such slab is full (the caller then brings a chunk to add_slab).
  std::optional<Block> allocate(const ChunkKey& key, size_t block_size);

  // Makes `chunk` a slab of `block_size` blocks and takes one.
  Block add_slab(const ChunkKey& key, size_t block_size, const Chunk& chunk);

  // Frees `block`; returns its chunk when that was the slab's last block.
  std::optional<Chunk> free(const Block& block);

  size_t slab_count() const;

 private:
  struct Slab {
    Chunk chunk;
    size_t block_size = 0;
    std::vector<uint64_t> free_bits;  // 1 = free
    size_t used = 0;
    size_t blocks = 0;
  };
  using ClassKey = std::pair<ChunkKey, size_t>;  // where, block size
  static std::optional<Block> take_block(Slab& slab);

  mutable std::mutex mutex_;
  std::map<uintptr_t, std::unique_ptr<Slab>> by_address_;
  std::map<ClassKey, std::vector<Slab*>> with_free_blocks_;
};

}  // namespace egm
