#include "shim/core/chunk_cache.h"

namespace egm {

std::optional<Chunk> ChunkCache::take(const ChunkKey& key, size_t size) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto bucket = by_key_.find(key);
  if (bucket == by_key_.end()) return std::nullopt;
  auto found = bucket->second.lower_bound(size);
  if (found == bucket->second.end() || found->first > size + size / 4) return std::nullopt;
  Chunk chunk = found->second.chunk;
  age_.erase(found->second.age);
  bucket->second.erase(found);
  cached_bytes_ -= chunk.mapping.mapped_size;
  return chunk;
}

std::vector<Chunk> ChunkCache::put(const Chunk& chunk) {
  if (chunk.mapping.mapped_size > limit_) return {chunk};
  std::lock_guard<std::mutex> lock(mutex_);
  ChunkKey key{chunk.node, chunk.device, chunk.host_access};
  std::vector<Chunk> evicted = evict_locked(limit_ - chunk.mapping.mapped_size);
  age_.emplace_back(key, chunk.id);
  by_key_[key].emplace(chunk.mapping.mapped_size, Entry{chunk, std::prev(age_.end())});
  cached_bytes_ += chunk.mapping.mapped_size;
  return evicted;
}

std::vector<Chunk> ChunkCache::trim_to(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  return evict_locked(bytes);
}

size_t ChunkCache::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

std::vector<Chunk> ChunkCache::evict_locked(size_t target) {
  std::vector<Chunk> evicted;
  while (cached_bytes_ > target && !age_.empty()) {
    auto [key, id] = age_.front();
    auto& bucket = by_key_[key];
    for (auto entry = bucket.begin(); entry != bucket.end(); ++entry) {
      if (entry->second.chunk.id != id) continue;
      evicted.push_back(entry->second.chunk);
      cached_bytes_ -= entry->first;
      bucket.erase(entry);
      break;
    }
    age_.pop_front();
  }
  return evicted;
}

}  // namespace egm
