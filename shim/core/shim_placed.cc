// libegm.so's own entry points over egm::Shim (egm_malloc's placement is in
// shim.cc, beside the interception path it shares): the free and the live
// table as JSON, for PyTorch's pluggable allocator and the egm Python package.
#include <fmt/format.h>
#include <unistd.h>

#include "config/version.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

void append_usage(std::string& json, const char* key, const std::map<int, NodeUsage>& usage) {
  json += fmt::format(",\"{}\":[", key);
  bool first = true;
  for (const auto& [id, use] : usage) {
    json += fmt::format("{}{{\"id\":{},\"current_bytes\":{},\"peak_bytes\":{},\"maps\":{}}}",
                        first ? "" : ",", id, use.current_bytes, use.peak_bytes, use.maps);
    first = false;
  }
  json += "]";
}

}  // namespace

bool Shim::free_placed(void* pointer) {
  if (pointer == nullptr) return true;
  if (forked_child_) return false;  // the parent's memory: not the child's to unmap
  drain_pending_frees();
  std::optional<Allocation> mapping = take_mapping(reinterpret_cast<uintptr_t>(pointer));
  if (mapping && mapping->api != Api::kEgmMalloc) {
    table_.restore(*mapping);  // an intercepted call's memory: cudaFree's to free
    mapping.reset();
  }
  if (!mapping) {
    note(fmt::format("egm_free({}): not memory egm_malloc returned; left alone", pointer));
    return false;
  }
  synchronize_for_free(*mapping);  // cudaFree's semantics: the device's work on it is done
  unmap_now(*mapping);
  return true;
}

std::string Shim::stats_json() const {
  if (forked_child_) return fmt::format("{{\"pid\":{},\"forked_child\":true}}", getpid());
  std::vector<Allocation> live = table_.live();
  size_t live_bytes = 0;
  for (const Allocation& mapping : live) live_bytes += mapping.mapped;
  std::string json = fmt::format(
      "{{\"version\":\"{}\",\"pid\":{},\"redirecting\":{},\"maps\":{},\"unmaps\":{},"
      "\"fallbacks\":{},\"live\":{},\"live_bytes\":{},\"pending_frees\":{},"
      "\"pool_cached_bytes\":{}",
      kVersion, getpid(), redirecting_ ? "true" : "false", table_.total_inserted(),
      table_.total_removed(), fallbacks_.load(std::memory_order_relaxed), live.size(), live_bytes,
      deferred_.count(), pool_->cached_bytes());
  append_usage(json, "nodes", budget_.usage_by_node());
  append_usage(json, "devices", budget_.usage_by_device());
  json += ",\"allocations\":[";
  for (size_t i = 0; i < live.size(); ++i) {
    const Allocation& a = live[i];
    json += fmt::format(
        "{}{{\"id\":{},\"api\":\"{}\",\"addr\":{},\"requested\":{},\"mapped\":{},\"node\":{},"
        "\"device\":{},\"chunk\":{},\"created_us\":{}}}",
        i == 0 ? "" : ",", a.id, api_name(a.api), a.address, a.requested, a.mapped, a.node,
        a.device, a.chunk_id, a.created_us);
  }
  json += "]}";
  return json;
}

}  // namespace egm
