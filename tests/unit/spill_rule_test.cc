#include "shim/core/spill_rule.h"

#include <gtest/gtest.h>

#include <string>

namespace egm {
namespace {

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kGiB = size_t{1} << 30;
// What an H200 reports as its total memory (139.8 GiB).
constexpr size_t kH200 = size_t{150110011392};

TEST(AutoSpillMinSizeTest, FollowsTheDeviceWithinItsBounds) {
  EXPECT_EQ(auto_spill_min_size(kH200), 64 * kMiB);
  EXPECT_EQ(auto_spill_min_size(80 * kGiB), 32 * kMiB);
  EXPECT_EQ(auto_spill_min_size(79 * kGiB), 32 * kMiB);  // rounded down to a power of two
  EXPECT_EQ(auto_spill_min_size(24 * kGiB), 8 * kMiB);
  EXPECT_EQ(auto_spill_min_size(1 * kGiB), 8 * kMiB);       // floor
  EXPECT_EQ(auto_spill_min_size(0), 8 * kMiB);              // unknown device
  EXPECT_EQ(auto_spill_min_size(4096 * kGiB), 256 * kMiB);  // ceiling
}

TEST(AutoDeviceReserveTest, A128thOfTheDeviceAtLeastOneGiB) {
  EXPECT_EQ(auto_device_reserve(192 * kGiB), 1536 * kMiB);
  EXPECT_EQ(auto_device_reserve(kH200), kH200 / 128 / kMiB * kMiB);
  EXPECT_EQ(auto_device_reserve(80 * kGiB), kGiB);
  EXPECT_EQ(auto_device_reserve(24 * kGiB), kGiB);
  EXPECT_EQ(auto_device_reserve(0), kGiB);
}

struct Case {
  size_t request;
  size_t free;
  bool try_device;
  std::string reason;
};

// A 64 MiB device keeping 16 MiB, spill size 8 MiB.
TEST(DecideSpillTest, TheReserveIsKeptForSmallRequests) {
  const DeviceMemory total{0, 64 * kMiB};
  for (const Case& c : {Case{20 * kMiB, 64 * kMiB, true, "spill-room"},
                        Case{20 * kMiB, 36 * kMiB, true, "spill-room"},  // leaves exactly 16
                        Case{20 * kMiB, 35 * kMiB, false, "above-spill-size"},
                        Case{8 * kMiB, 20 * kMiB, false, "above-spill-size"},  // at the size
                        Case{8 * kMiB - 1, 20 * kMiB, true, "below-spill-size"},
                        Case{5 * kMiB, 13 * kMiB, true, "below-spill-size"},  // leaves exactly 8
                        Case{5 * kMiB, 13 * kMiB - 1, false, "reserve-floor"},
                        Case{5 * kMiB, 4 * kMiB, false, "reserve-floor"},
                        Case{100 * kMiB, 64 * kMiB, false, "above-spill-size"}}) {
    SpillDecision decision = decide_spill(c.request, {c.free, total.total}, 8 * kMiB, 16 * kMiB);
    EXPECT_EQ(decision.try_device, c.try_device) << c.request << " " << c.free;
    EXPECT_EQ(std::string(decision.reason), c.reason) << c.request << " " << c.free;
    EXPECT_EQ(decision.spill_min_size, 8 * kMiB);
    EXPECT_EQ(decision.device_reserve, 16 * kMiB);
  }
}

TEST(DecideSpillTest, ZeroIsTheRuleWithoutASize) {
  SpillDecision small = decide_spill(1, {16 * kMiB, 64 * kMiB}, 0, 16 * kMiB);
  EXPECT_FALSE(small.try_device);
  EXPECT_EQ(std::string(small.reason), "above-spill-size");
  EXPECT_TRUE(decide_spill(1, {16 * kMiB + 1, 64 * kMiB}, 0, 16 * kMiB).try_device);
}

TEST(DecideSpillTest, AutoSettingsComeFromTheTotal) {
  SpillDecision decision = decide_spill(32 * kMiB, {kGiB, kH200}, std::nullopt, std::nullopt);
  EXPECT_EQ(decision.spill_min_size, 64 * kMiB);
  EXPECT_EQ(decision.device_reserve, auto_device_reserve(kH200));
  EXPECT_TRUE(decision.try_device);
  EXPECT_EQ(std::string(decision.reason), "below-spill-size");
  EXPECT_FALSE(decide_spill(64 * kMiB, {kGiB, kH200}, std::nullopt, std::nullopt).try_device);
}

// cuMemGetInfo failed: small requests still try the device, large ones spill.
TEST(DecideSpillTest, UnknownMemory) {
  EXPECT_TRUE(decide_spill(kMiB, {}, std::nullopt, std::nullopt).try_device);
  EXPECT_FALSE(decide_spill(64 * kMiB, {}, std::nullopt, std::nullopt).try_device);
}

}  // namespace
}  // namespace egm
