// The event lines' fields, spelled out: egm-inspect and the preload tests
// parse them, so a change here is a change of the log format (docs/DESIGN.md).
#include "shim/core/events.h"

#include <gtest/gtest.h>

#include <string>

namespace egm {
namespace {

Allocation sample_mapping() {
  Allocation mapping;
  mapping.id = 7;
  mapping.api = Api::kCuMemAlloc;
  mapping.address = 0x7f0000200000;
  mapping.requested = 100;
  mapping.mapped = 2097152;
  mapping.node = 0;
  mapping.device = 1;
  mapping.handle = 0x5;
  mapping.chunk_id = 3;
  return mapping;
}

TEST(EventsTest, MapUnmapAndLeakLinesDescribeTheAllocationAlike) {
  const std::string allocation =
      "id=7 api=cuMemAlloc addr=0x7f0000200000 requested=100 mapped=2097152 node=0 device=1";
  Event map = events::map(sample_mapping(), 12, "nearest trigger=always", "fresh");
  EXPECT_EQ(map.level, LogLevel::kInfo);
  EXPECT_STREQ(map.name, "map");
  EXPECT_EQ(map.fields, allocation +
                            " handle=0x5 chunk=3 source=fresh map_us=12 reason=nearest "
                            "trigger=always");
  Event snapshot = events::snapshot_map(sample_mapping());
  EXPECT_STREQ(snapshot.name, "map");
  EXPECT_EQ(snapshot.fields, allocation + " handle=0x5 chunk=3 source=snapshot");
  Event unmap = events::unmap(sample_mapping(), 500, 9, "slab");
  EXPECT_STREQ(unmap.name, "unmap");
  EXPECT_EQ(unmap.fields, allocation + " lifetime_us=500 unmap_us=9 via=slab");
  EXPECT_EQ(events::leak(sample_mapping(), 42).fields, allocation + " age_us=42");
}

TEST(EventsTest, ChunkLinesNameTheirDirection) {
  Chunk chunk;
  chunk.id = 4;
  chunk.mapping.address = 0x7f0000000000;
  chunk.mapping.mapped_size = 4194304;
  chunk.mapping.handle = 0x9;
  chunk.node = 1;
  chunk.device = 0;
  Event mapped = events::chunk("map", chunk, "fresh", 30);
  EXPECT_STREQ(mapped.name, "chunk-map");
  EXPECT_EQ(mapped.fields,
            "chunk=4 addr=0x7f0000000000 bytes=4194304 node=1 device=0 handle=0x9 map_us=30 "
            "reason=fresh");
  Event unmapped = events::chunk("unmap", chunk, "evict", 8);
  EXPECT_STREQ(unmapped.name, "chunk-unmap");
  EXPECT_EQ(unmapped.fields,
            "chunk=4 addr=0x7f0000000000 bytes=4194304 node=1 device=0 handle=0x9 unmap_us=8 "
            "reason=evict");
}

TEST(EventsTest, DecisionsFallbacksAndSpillFields) {
  Event decision = events::decision(Api::kCudaMalloc, 64, -1, "device", "filter");
  EXPECT_EQ(decision.level, LogLevel::kDebug);
  EXPECT_EQ(decision.fields,
            "api=cudaMalloc requested=64 device=-1 placement=device reason=filter");
  SpillDecision spill;
  spill.reason = "above-spill-size";
  spill.spill_min_size = 8;
  spill.device_reserve = 16;
  DeviceMemory memory{100, 200};
  Event spilled = events::spill_decision(Api::kCudaMalloc, 64, 0, "host", spill, memory);
  EXPECT_EQ(spilled.level, LogLevel::kInfo);
  EXPECT_EQ(spilled.fields,
            "api=cudaMalloc requested=64 device=0 placement=host reason=above-spill-size "
            "device_free=100 device_total=200 spill_min_size=8 device_reserve=16");
  EXPECT_EQ(events::spill_trigger("spill-threshold", spill, memory),
            "spill-threshold spill_reason=above-spill-size device_free=100 device_total=200 "
            "spill_min_size=8 device_reserve=16");
  Event fallback =
      events::fallback(Api::kCudaMalloc, 64, 0, 1, "cuMemCreate", nullptr, "real-call");
  EXPECT_EQ(fallback.level, LogLevel::kWarn);
  EXPECT_EQ(fallback.fields,
            "api=cudaMalloc requested=64 node=0 device=1 step=cuMemCreate error=unknown "
            "action=real-call");
}

TEST(EventsTest, SummaryLinesShareTheirCounters) {
  events::Totals totals{5, 4, 1, 1, 4096, 0, 8192};
  EXPECT_EQ(events::summary(totals).fields,
            "maps=5 unmaps=4 fallbacks=1 live=1 live_bytes=4096 pending_frees=0 "
            "pool_cached_bytes=8192");
  EXPECT_EQ(events::snapshot(totals).fields, "live=1 live_bytes=4096 pool_cached_bytes=8192");
  NodeUsage usage{2048, 4096, 3};
  Event node = events::node_summary(1, usage);
  EXPECT_STREQ(node.name, "node-summary");
  EXPECT_EQ(node.fields, "node=1 current_bytes=2048 peak_bytes=4096 maps=3");
  Event device = events::device_summary(0, usage);
  EXPECT_STREQ(device.name, "device-summary");
  EXPECT_EQ(device.fields, "device=0 current_bytes=2048 peak_bytes=4096 maps=3");
}

TEST(EventsTest, PeerAccessIsAnErrorOnlyWhenTheGrantFailed) {
  Event ok = events::peer_access(0, 1, nullptr);
  EXPECT_EQ(ok.level, LogLevel::kInfo);
  EXPECT_EQ(ok.fields, "device=0 peer=1 result=ok");
  Event failed = events::peer_access(0, 1, "CUDA_ERROR_INVALID_VALUE");
  EXPECT_EQ(failed.level, LogLevel::kError);
  EXPECT_EQ(failed.fields, "device=0 peer=1 result=CUDA_ERROR_INVALID_VALUE");
}

TEST(EventsTest, StagingLines) {
  Event window = events::stage_window(1, 2147483648, 0x7f1000000000);
  EXPECT_EQ(window.level, LogLevel::kInfo);
  EXPECT_STREQ(window.name, "stage-window");
  EXPECT_EQ(window.fields, "device=1 bytes=2147483648 address=0x7f1000000000");
  Event stage = events::stage(sample_mapping());
  EXPECT_STREQ(stage.name, "stage");
  EXPECT_EQ(stage.fields, "id=7 address=0x7f0000200000 bytes=100 device=1 launches=1");
  Event unstage = events::unstage(sample_mapping(), 3, 312);
  EXPECT_STREQ(unstage.name, "unstage");
  EXPECT_EQ(unstage.fields,
            "id=7 address=0x7f0000200000 bytes=100 device=1 stagings=3 staged_bytes=312");
  Event refused = events::staging_decision(sample_mapping(), "capturing");
  EXPECT_STREQ(refused.name, "decision");
  EXPECT_EQ(refused.level, LogLevel::kInfo);
  EXPECT_EQ(refused.fields,
            "staging=no id=7 address=0x7f0000200000 bytes=100 device=1 reason=capturing");
  EXPECT_EQ(events::staging_function_decision(0xabc, "layout-unknown").fields,
            "staging=no function=0xabc reason=layout-unknown");
  Event summary = events::staging_summary(4, 400, 2, " refused_capturing=2");
  EXPECT_STREQ(summary.name, "staging-summary");
  EXPECT_EQ(summary.fields,
            "staged_launches=4 staged_bytes=400 refused_launches=2 refused_capturing=2");
}

TEST(EventsTest, StartAndNoticeLines) {
  EXPECT_EQ(events::notice("two words").fields, "message=\"two words\"");
  Event start = events::start("1.2.3", "4", "gpu-01", "mode=spill log_level=info");
  EXPECT_STREQ(start.name, "start");
  EXPECT_EQ(start.fields, "version=1.2.3 rank=4 host=gpu-01 mode=spill log_level=info");
}

}  // namespace
}  // namespace egm
