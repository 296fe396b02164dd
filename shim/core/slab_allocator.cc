#include "shim/core/slab_allocator.h"

#include <algorithm>

namespace egm {
namespace {

constexpr size_t kMinimumBlock = 256;

size_t round_up_to(size_t value, size_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace

size_t block_size_for(size_t size, size_t chunk_size) {
  if (size == 0 || size > chunk_size / 2) return 0;  // a block per chunk gains nothing
  if (size <= 2048) return round_up_to(std::max(size, kMinimumBlock), kMinimumBlock);
  // Four classes per doubling: step = a quarter of the power of two below.
  size_t power = 1;
  while (power * 2 < size) power *= 2;
  size_t step = std::max(power / 4, kMinimumBlock);
  return round_up_to(size, step);
}

std::optional<Block> SlabAllocator::take_block(Slab& slab) {
  for (size_t word = 0; word < slab.free_bits.size(); ++word) {
    if (slab.free_bits[word] == 0) continue;
    int bit = __builtin_ctzll(slab.free_bits[word]);
    slab.free_bits[word] &= ~(uint64_t{1} << bit);
    ++slab.used;
    size_t index = word * 64 + static_cast<size_t>(bit);
    uintptr_t chunk_address = static_cast<uintptr_t>(slab.chunk.mapping.address);
    return Block{chunk_address + index * slab.block_size, slab.block_size, slab.chunk.id,
                 chunk_address};
  }
  return std::nullopt;
}

std::optional<Block> SlabAllocator::allocate(const ChunkKey& key, size_t block_size) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Slab*>& candidates = with_free_blocks_[{key, block_size}];
  while (!candidates.empty()) {
    Slab* slab = candidates.back();
    std::optional<Block> block = take_block(*slab);
    if (slab->used == slab->blocks) candidates.pop_back();
    if (block) return block;
  }
  return std::nullopt;
}

Block SlabAllocator::add_slab(const ChunkKey& key, size_t block_size, const Chunk& chunk) {
  auto slab = std::make_unique<Slab>();
  slab->chunk = chunk;
  slab->block_size = block_size;
  slab->blocks = chunk.mapping.mapped_size / block_size;
  slab->free_bits.assign((slab->blocks + 63) / 64, 0);
  for (size_t i = 0; i < slab->blocks; ++i) slab->free_bits[i / 64] |= uint64_t{1} << (i % 64);
  std::lock_guard<std::mutex> lock(mutex_);
  Slab* raw = slab.get();
  by_address_.emplace(static_cast<uintptr_t>(chunk.mapping.address), std::move(slab));
  Block block = *take_block(*raw);
  if (raw->used < raw->blocks) with_free_blocks_[{key, block_size}].push_back(raw);
  return block;
}

std::optional<Chunk> SlabAllocator::free(const Block& block) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = by_address_.find(block.chunk_address);
  if (found == by_address_.end()) return std::nullopt;
  Slab& slab = *found->second;
  size_t index = (block.address - block.chunk_address) / slab.block_size;
  bool was_full = slab.used == slab.blocks;
  slab.free_bits[index / 64] |= uint64_t{1} << (index % 64);
  --slab.used;
  ClassKey class_key{{slab.chunk.node, slab.chunk.device, slab.chunk.host_access}, slab.block_size};
  std::vector<Slab*>& candidates = with_free_blocks_[class_key];
  if (slab.used == 0) {
    candidates.erase(std::remove(candidates.begin(), candidates.end(), &slab), candidates.end());
    Chunk chunk = slab.chunk;
    by_address_.erase(found);
    return chunk;
  }
  if (was_full) candidates.push_back(&slab);
  return std::nullopt;
}

size_t SlabAllocator::slab_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return by_address_.size();
}

}  // namespace egm
