#include "shim/core/staging_window.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace egm {
namespace {

// Fake events: numbered pointers; creation can be made to fail.
struct FakeEvents {
  uintptr_t next = 1;
  bool fail = false;
  std::set<void*> live;
};

void* create(void* context) {
  auto* fake = static_cast<FakeEvents*>(context);
  if (fake->fail) return nullptr;
  void* event = reinterpret_cast<void*>(fake->next++);
  fake->live.insert(event);
  return event;
}

void destroy(void* context, void* event) { static_cast<FakeEvents*>(context)->live.erase(event); }

class StagingWindowTest : public ::testing::Test {
 protected:
  WindowEvents events() { return {create, destroy, &fake_}; }
  FakeEvents fake_;
};

TEST_F(StagingWindowTest, RegionsFollowEachOtherAligned) {
  StagingWindow window(4096, events());
  auto a = window.reserve(100);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(a->size, 256u);
  EXPECT_TRUE(a->waits.empty());
  window.commit(*a, true);
  auto b = window.reserve(300);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->offset, 256u);
  EXPECT_EQ(b->size, 512u);
  EXPECT_NE(a->event, b->event);
  EXPECT_TRUE(b->waits.empty());
}

TEST_F(StagingWindowTest, WrapsAndWaitsForEveryRegionItOverlaps) {
  StagingWindow window(1024, events());
  std::vector<StagingWindow::Reservation> made;
  for (int i = 0; i < 4; ++i) {
    auto r = window.reserve(256);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->offset, 256u * i);
    window.commit(*r, true);
    made.push_back(*r);
  }
  // Full: the next 512 bytes wrap to the start and overlap the first two.
  auto wrapped = window.reserve(512);
  ASSERT_TRUE(wrapped);
  EXPECT_EQ(wrapped->offset, 0u);
  EXPECT_EQ(wrapped->waits, (std::vector<void*>{made[0].event, made[1].event}));
  EXPECT_FALSE(wrapped->synchronize);
  window.commit(*wrapped, true);
  // The next one overlaps the third region only.
  auto next = window.reserve(200);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->offset, 512u);
  EXPECT_EQ(next->waits, (std::vector<void*>{made[2].event}));
}

TEST_F(StagingWindowTest, RetiredEventsAreReusedNotLeaked) {
  StagingWindow window(1024, events());
  for (int round = 0; round < 1000; ++round) {
    auto r = window.reserve(300);
    ASSERT_TRUE(r);
    EXPECT_LE(r->offset + r->size, 1024u);
    window.commit(*r, true);
  }
  EXPECT_LE(window.events_made(), 4u);  // at most the regions that fit, plus one
  EXPECT_LE(window.live_regions(), 2u);
}

// A region whose event was never recorded (its launch failed before the
// record): a later overlap cannot wait for it and synchronizes instead.
TEST_F(StagingWindowTest, UnrecordedRegionMakesTheOverlapSynchronize) {
  StagingWindow window(512, events());
  auto a = window.reserve(512);
  ASSERT_TRUE(a);
  window.commit(*a, false);
  auto b = window.reserve(256);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->synchronize);
  EXPECT_TRUE(b->waits.empty());
}

TEST_F(StagingWindowTest, TooLargeOrNoEventChangesNothing) {
  StagingWindow window(1000, events());  // 768 usable in 256-byte units... 1000 - 1000 % 256
  EXPECT_FALSE(window.reserve(0));
  EXPECT_FALSE(window.reserve(769));
  EXPECT_TRUE(window.reserve(768));
  fake_.fail = true;
  StagingWindow other(4096, events());
  EXPECT_FALSE(other.reserve(256));
  EXPECT_EQ(other.live_regions(), 0u);
}

TEST_F(StagingWindowTest, EveryEventIsDestroyedWithTheWindow) {
  {
    StagingWindow window(1024, events());
    for (int i = 0; i < 10; ++i) {
      auto r = window.reserve(256);
      ASSERT_TRUE(r);
      window.commit(*r, true);
    }
    EXPECT_FALSE(fake_.live.empty());
  }
  EXPECT_TRUE(fake_.live.empty());
}

// Random sizes: no two live regions ever overlap, and each reservation waits
// for exactly the live regions it overlaps.
TEST_F(StagingWindowTest, LiveRegionsNeverOverlap) {
  StagingWindow window(64 * 1024, events());
  struct Live {
    size_t offset, size;
    void* event;
  };
  std::vector<Live> live;
  unsigned seed = 12345;
  for (int i = 0; i < 5000; ++i) {
    seed = seed * 1103515245 + 12345;
    size_t size = 1 + (seed >> 8) % (20 * 1024);
    auto r = window.reserve(size);
    ASSERT_TRUE(r);
    std::set<void*> expected;
    std::vector<Live> kept;
    for (const Live& l : live) {
      bool overlap = l.offset < r->offset + r->size && r->offset < l.offset + l.size;
      if (overlap) {
        expected.insert(l.event);
      } else {
        kept.push_back(l);
      }
    }
    EXPECT_EQ(std::set<void*>(r->waits.begin(), r->waits.end()), expected) << i;
    kept.push_back({r->offset, r->size, r->event});
    live = kept;
    window.commit(*r, true);
    ASSERT_EQ(window.live_regions(), live.size());
  }
}

}  // namespace
}  // namespace egm
