#include "shim/core/placement.h"

#include <gtest/gtest.h>

namespace egm {
namespace {

TEST(PlacementTest, ExplicitNodeWins) {
  Config config;
  config.numa_node = 3;
  NodeChoice choice = choose_node(config, 1);
  EXPECT_EQ(choice.node, 3);
  EXPECT_STREQ(choice.reason, "EGM_NUMA_NODE");
}

TEST(PlacementTest, NearestNodeOfTheGpuOtherwise) {
  NodeChoice choice = choose_node(Config{}, 1);
  EXPECT_EQ(choice.node, 1);
  EXPECT_STREQ(choice.reason, "nearest");
}

TEST(PlacementTest, NodeZeroWhenTheGpuKnowsNoNearestNode) {
  NodeChoice choice = choose_node(Config{}, -1);
  EXPECT_EQ(choice.node, 0);
  EXPECT_STREQ(choice.reason, "default");
}

}  // namespace
}  // namespace egm
