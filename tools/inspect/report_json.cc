#include <nlohmann/json.hpp>

#include "tools/inspect/report.h"

namespace egm::inspect {
namespace {

// Keys in the order written, so the output reads like the text report.
using Json = nlohmann::ordered_json;

constexpr int kIndent = 2;

// Times both as the log writes them and as an offset from the first event.
Json time_json(int64_t time_us, int64_t first_us) {
  return Json{{"time", format_timestamp(time_us)}, {"offset_us", time_us - first_us}};
}

Json mapping_json(const Mapping& mapping, int64_t first_us) {
  Json json = {{"pid", mapping.pid},
               {"id", mapping.id},
               {"api", mapping.api},
               {"addr", hex_text(mapping.addr)},
               {"requested", mapping.requested},
               {"mapped", mapping.mapped},
               {"node", mapping.node},
               {"device", mapping.device},
               {"mapped_at", time_json(mapping.mapped_at_us, first_us)}};
  json["map_us"] = mapping.map_us ? Json(*mapping.map_us) : Json(nullptr);
  if (!mapping.rank.empty()) json["rank"] = mapping.rank;
  if (!mapping.host.empty()) json["host"] = mapping.host;
  if (mapping.chunk != 0) json["chunk"] = mapping.chunk;
  if (!mapping.source.empty()) json["source"] = mapping.source;
  return json;
}

Json mappings_json(const std::vector<Mapping>& mappings, int64_t first_us) {
  Json array = Json::array();
  for (const Mapping& mapping : mappings) array.push_back(mapping_json(mapping, first_us));
  return array;
}

Json leaks_json(const std::vector<Leak>& leaks, int64_t first_us) {
  Json array = Json::array();
  for (const Leak& leak : leaks) {
    Json json = mapping_json(leak.mapping, first_us);
    json["map_line_seen"] = leak.map_seen;
    json["reported_by_shim"] = leak.reported_by_shim;
    array.push_back(std::move(json));
  }
  return array;
}

Json processes_json(const std::vector<ProcessSummary>& processes, int64_t first_us) {
  Json array = Json::array();
  for (const ProcessSummary& process : processes) {
    Json json = {{"pid", process.pid},
                 {"files", process.files},
                 {"first_event", time_json(process.first_us, first_us)},
                 {"last_event", time_json(process.last_us, first_us)},
                 {"maps", process.maps},
                 {"unmaps", process.unmaps},
                 {"fallbacks", process.fallbacks},
                 {"leaks", process.leaks},
                 {"exit_summary_seen", process.exit_summary_seen}};
    if (!process.rank.empty()) json["rank"] = process.rank;
    if (!process.host.empty()) json["host"] = process.host;
    array.push_back(std::move(json));
  }
  return array;
}

Json usage_json(const std::map<int64_t, ByteUsage>& usage_by_key, const char* key_name) {
  Json array = Json::array();
  for (const auto& [key, usage] : usage_by_key) {
    array.push_back({{key_name, key},
                     {"current_bytes", usage.current_bytes},
                     {"peak_bytes", usage.peak_bytes},
                     {"maps", usage.maps}});
  }
  return array;
}

// One rank's, host's or all processes' share.
Json group_json(const GroupSummary& group, const char* key_name) {
  return {{key_name, group.name},
          {"ranks", group.ranks},
          {"hosts", group.hosts},
          {"pids", group.pids},
          {"processes", group.processes},
          {"placed_bytes", group.placed_bytes},
          {"current_bytes", group.current_bytes},
          {"peak_bytes", group.peak_bytes},
          {"maps", group.maps},
          {"unmaps", group.unmaps},
          {"fallbacks", group.fallbacks},
          {"leaks", group.leaks}};
}

Json groups_json(const std::vector<GroupSummary>& groups, const char* key_name) {
  Json array = Json::array();
  for (const GroupSummary& group : groups) array.push_back(group_json(group, key_name));
  return array;
}

Json histogram_json(const std::vector<SizeBucket>& buckets) {
  Json array = Json::array();
  for (const SizeBucket& bucket : buckets) {
    uint64_t upper = bucket.lower_bytes == 0 ? 1 : bucket.lower_bytes * 2;
    array.push_back({{"min_bytes", bucket.lower_bytes},
                     {"below_bytes", upper},
                     {"count", bucket.count},
                     {"bytes", bucket.bytes}});
  }
  return array;
}

Json fallbacks_json(const std::vector<FallbackCount>& fallbacks) {
  Json array = Json::array();
  for (const FallbackCount& count : fallbacks) {
    array.push_back({{"step", count.step},
                     {"error", count.error},
                     {"count", count.count},
                     {"requested_bytes", count.requested_bytes}});
  }
  return array;
}

Json warnings_json(const std::vector<Warning>& warnings) {
  Json array = Json::array();
  for (const Warning& warning : warnings) {
    array.push_back(
        {{"file", warning.where.file}, {"line", warning.where.line}, {"message", warning.message}});
  }
  return array;
}

Json spill_json(const Report& report) {
  Json array = Json::array();
  for (const auto& [key, usage] : report.spill) {
    Json timeline = Json::array();
    for (const SpillSample& sample : usage.timeline) {
      timeline.push_back({{"offset_us", sample.time_us - report.first_us},
                          {"device_bytes", sample.device_bytes},
                          {"host_bytes", sample.host_bytes}});
    }
    array.push_back({{"pid", usage.pid},
                     {"device", usage.device},
                     {"device_total", usage.device_total},
                     {"kept_on_device", usage.kept_on_device},
                     {"kept_in_reserve", usage.kept_in_reserve},
                     {"spilled_for_size", usage.spilled_for_size},
                     {"spilled_out_of_memory", usage.spilled_out_of_memory},
                     {"current_device_bytes", usage.current.device_bytes},
                     {"peak_device_bytes", usage.peak_device_bytes},
                     {"current_host_bytes", usage.current.host_bytes},
                     {"peak_host_bytes", usage.peak_host_bytes},
                     {"timeline", timeline}});
  }
  return array;
}

Json snapshot_json(const Report& report) {
  Json json = time_json(report.snapshot_us, report.first_us);
  json["end_of_log"] = report.snapshot_is_end;
  return json;
}

}  // namespace

std::string json_report(const Report& report) {
  int64_t first = report.first_us;
  Json json = {{"files", report.files},
               {"events", report.events},
               {"unreadable_lines", report.lines_skipped},
               {"first_event", time_json(report.first_us, first)},
               {"last_event", time_json(report.last_us, first)},
               {"snapshot", snapshot_json(report)},
               {"processes", processes_json(report.processes, first)},
               {"nodes", usage_json(report.nodes, "node")},
               {"devices", usage_json(report.devices, "device")},
               {"pinned_by_node", usage_json(report.pinned_by_node, "node")},
               {"live", mappings_json(report.live, first)},
               {"leaks", leaks_json(report.leaks, first)},
               {"size_histogram", histogram_json(report.size_histogram)},
               {"slowest", mappings_json(report.slowest, first)},
               {"fallbacks", fallbacks_json(report.fallbacks)},
               {"warnings", warnings_json(report.warnings)}};
  // Logs that name their rank or host only, so that other reports keep their shape.
  if (report.has_ranks) {
    json["ranks"] = groups_json(report.ranks, "rank");
    json["hosts"] = groups_json(report.hosts, "host");
    json["total"] = group_json(report.total, "name");
  }
  // Spill runs only, so that other reports keep their shape.
  if (!report.spill.empty()) json["spill"] = spill_json(report);
  // Replacement characters instead of an exception for any stray byte in a
  // value: the log is untrusted input.
  return json.dump(kIndent, ' ', false, Json::error_handler_t::replace) + "\n";
}

}  // namespace egm::inspect
