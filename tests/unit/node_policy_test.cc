#include "shim/core/node_policy.h"

#include <gtest/gtest.h>

#include <map>

namespace egm {
namespace {

constexpr size_t kGiB = size_t{1} << 30;

// Two sockets: nodes 0,1 on one (distance 11 to each other), 2,3 on the
// other (distance 21 across).
HostTopology two_sockets() {
  HostTopology topology{{{0, 64 * kGiB}, {1, 64 * kGiB}, {2, 64 * kGiB}, {3, 64 * kGiB}}, {}};
  for (int a = 0; a < 4; ++a) {
    for (int b = 0; b < 4; ++b) {
      topology.distance[{a, b}] = a == b ? 10 : (a / 2 == b / 2 ? 11 : 21);
    }
  }
  return topology;
}

Config with_policy(const std::string& policy) {
  ParsedConfig parsed = parse_config({{"EGM_NUMA_POLICY", policy}}, two_sockets());
  EXPECT_TRUE(parsed.errors.empty()) << policy;
  return parsed.config;
}

size_t no_free_bytes(int) { return 0; }

struct OrderCase {
  std::string policy;
  int gpu_nearest_node;
  std::vector<int> expected_order;
  std::string expected_reason;
};

class PlacementOrderTest : public ::testing::TestWithParam<OrderCase> {};

TEST_P(PlacementOrderTest, FirstNodeIsThePolicysChoiceThenByDistance) {
  const OrderCase& c = GetParam();
  NodePolicy policy(with_policy(c.policy), two_sockets(), no_free_bytes);
  NodeOrder order = policy.order(c.gpu_nearest_node);
  EXPECT_EQ(order.nodes, c.expected_order) << c.policy;
  EXPECT_EQ(order.reason, c.expected_reason);
}

INSTANTIATE_TEST_SUITE_P(PoolBlock, PlacementOrderTest,
                         ::testing::Values(OrderCase{"nearest", 2, {2, 3, 0, 1}, "nearest"},
                                           OrderCase{"nearest", 1, {1, 0, 2, 3}, "nearest"},
                                           OrderCase{"nearest", -1, {0, 1, 2, 3}, "lowest-node"},
                                           OrderCase{"nearest", 7, {0, 1, 2, 3}, "lowest-node"},
                                           OrderCase{"bind:3", 0, {3}, "bind"},
                                           OrderCase{"bind:1-3", 2, {2, 3, 1}, "bind"},
                                           OrderCase{"bind:1-3", 0, {1, 2, 3}, "bind"},
                                           OrderCase{"preferred:3", 0, {3, 2, 0, 1}, "preferred"}));

TEST(PlacementTest, InterleaveGoesRoundRobinPerAllocation) {
  NodePolicy policy(with_policy("interleave:0,2-3"), two_sockets(), no_free_bytes);
  std::vector<int> firsts;
  for (int i = 0; i < 6; ++i) firsts.push_back(policy.order(0).nodes.front());
  EXPECT_EQ(firsts, (std::vector<int>{0, 2, 3, 0, 2, 3}));
  EXPECT_EQ(policy.order(0).nodes, (std::vector<int>{0, 2, 3})) << "fallbacks stay in the set";
}

TEST(PlacementTest, WeightedFollowsTheWeightsEvenly) {
  NodePolicy policy(with_policy("weighted:0=3,2=1"), two_sockets(), no_free_bytes);
  std::vector<int> firsts;
  for (int i = 0; i < 8; ++i) firsts.push_back(policy.order(0).nodes.front());
  EXPECT_EQ(firsts, (std::vector<int>{0, 0, 2, 0, 0, 0, 2, 0}));
  std::map<int, int> counts;
  for (int i = 0; i < 4000; ++i) ++counts[policy.order(0).nodes.front()];
  EXPECT_EQ(counts[0], 3000);
  EXPECT_EQ(counts[2], 1000);
}

TEST(PlacementTest, MostFreePicksTheNodeWithTheMostFreeMemory) {
  std::map<int, size_t> free = {{0, 5 * kGiB}, {1, 1 * kGiB}, {2, 9 * kGiB}, {3, 2 * kGiB}};
  NodePolicy policy(with_policy("most-free"), two_sockets(),
                         [&free](int node) { return free[node]; });
  EXPECT_EQ(policy.order(0).nodes, (std::vector<int>{2, 3, 0, 1}));
  free[1] = 20 * kGiB;
  EXPECT_EQ(policy.order(0).nodes.front(), 1) << "read at each decision";
}

}  // namespace
}  // namespace egm
