// GpuTurns: the analysis thread and the stage thread of a video's face work take turns on the GPU.
// One turn at a time over both sides; a side waiting when a turn ends has the next one (strict
// alternation while both ask); a side alone never waits; abort() wakes a waiting side with
// kCancelled.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/gpu_turns.h"

namespace fswap {
namespace {

using Side = GpuTurns::Side;
using namespace std::chrono_literals;

// Polls `done` until it holds, for at most 10 s (a loaded CI machine); false on time-out.
template <class F>
bool eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// `side` has started waiting `waits` times (GpuTurns counts a wait before it blocks).
bool waits_reach(const GpuTurns& turns, Side side, std::uint64_t waits) {
  return eventually([&] { return turns.stats()[side].waits >= waits; });
}

TEST(GpuTurns, TwoSidesAreNeverInsideATurnAtOnce) {
  GpuTurns turns;
  std::atomic<int> inside{0}, overlaps{0};
  constexpr int kTurns = 300;
  auto side = [&](Side s) {
    for (int i = 0; i < kTurns; ++i) {
      auto turn = turns.take(s);
      ASSERT_TRUE(turn.is_ok()) << turn.status().to_string();
      if (++inside != 1) ++overlaps;
      if (i % 16 == 0) std::this_thread::yield();
      --inside;
    }
  };
  std::thread analysis(side, Side::kAnalysis);
  side(Side::kStages);
  analysis.join();
  EXPECT_EQ(overlaps.load(), 0);
  const GpuTurns::Stats stats = turns.stats();
  EXPECT_EQ(stats[Side::kAnalysis].turns, static_cast<std::uint64_t>(kTurns));
  EXPECT_EQ(stats[Side::kStages].turns, static_cast<std::uint64_t>(kTurns));
}

// A side whose other side does not ask takes turn after turn without waiting.
TEST(GpuTurns, ASideAloneNeverWaits) {
  GpuTurns turns;
  for (int i = 0; i < 5; ++i) {
    auto turn = turns.take(Side::kAnalysis);
    ASSERT_TRUE(turn.is_ok());
    EXPECT_TRUE(turn->held());
  }
  EXPECT_EQ(turns.stats()[Side::kAnalysis].turns, 5u);
  EXPECT_EQ(turns.stats()[Side::kAnalysis].waits, 0u);
}

// The side waiting when a turn ends goes next, even when the side that ends it asks again at
// once: while both keep asking, the turns alternate strictly. Each side ends its turn only once
// the other is seen waiting, so the order does not depend on timing; an unfair lock (the ender
// taking the turn again) fails by time-out instead of alternating.
TEST(GpuTurns, AWaitingSideGetsTheNextTurn) {
  GpuTurns turns;
  constexpr int kRounds = 20;
  std::mutex mu;
  std::vector<Side> order;
  auto side = [&](Side s, Side other) {
    for (int i = 0; i < kRounds; ++i) {
      auto turn = turns.take(s);
      ASSERT_TRUE(turn.is_ok()) << turn.status().to_string();
      {
        std::lock_guard lock(mu);
        order.push_back(s);
      }
      // Every take below waits. The stage side's round i: the analysis side's take of its round
      // i, its wait i + 1 (its first turn, taken before the loop, did not wait). The analysis
      // side's round i: the stage side's take of round i + 1, its wait i + 2; none after the last.
      const bool other_asks = s == Side::kStages || i + 1 < kRounds;
      const auto other_waits = static_cast<std::uint64_t>(i) + (s == Side::kStages ? 1 : 2);
      if (other_asks) {
        ASSERT_TRUE(waits_reach(turns, other, other_waits)) << "the other side never waited, round " << i;
      }
    }
  };
  // The analysis side holds the first turn before the stage side asks.
  auto first = turns.take(Side::kAnalysis);
  ASSERT_TRUE(first.is_ok());
  std::thread stages(side, Side::kStages, Side::kAnalysis);
  ASSERT_TRUE(waits_reach(turns, Side::kStages, 1));
  first->release();
  // kAnalysis now asks again while kStages waits: kStages must go first.
  side(Side::kAnalysis, Side::kStages);
  stages.join();
  ASSERT_EQ(order.size(), static_cast<std::size_t>(2 * kRounds));
  for (std::size_t i = 0; i < order.size(); ++i)
    EXPECT_EQ(order[i], i % 2 == 0 ? Side::kStages : Side::kAnalysis) << "turn " << i;
}

// A side blocked waiting for a turn (the other side failed while holding it, or the queue was
// aborted) is woken by abort() with kCancelled; later takes fail at once; the turn held stays
// valid until it ends.
TEST(GpuTurns, AbortWakesAWaitingSideWithAClearFailure) {
  GpuTurns turns;
  auto held = turns.take(Side::kAnalysis);
  ASSERT_TRUE(held.is_ok());
  auto waiting = std::async(std::launch::async, [&] { return turns.take(Side::kStages).status(); });
  ASSERT_TRUE(waits_reach(turns, Side::kStages, 1));
  EXPECT_EQ(waiting.wait_for(50ms), std::future_status::timeout) << "took a turn that was held";
  turns.abort();
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready) << "abort() left the waiting side blocked";
  const Status woken = waiting.get();
  EXPECT_EQ(woken.code(), StatusCode::kCancelled);
  EXPECT_NE(woken.message().find("waiting for a turn on the GPU"), std::string::npos) << woken.message();
  held->release();
  EXPECT_EQ(turns.take(Side::kAnalysis).status().code(), StatusCode::kCancelled);
  EXPECT_EQ(turns.take(Side::kStages).status().code(), StatusCode::kCancelled);
  EXPECT_EQ(turns.stats()[Side::kStages].turns, 0u);
}

// A turn ends when its Turn is destroyed or released, once; a moved-from Turn holds none.
TEST(GpuTurns, ATurnEndsWithItsObject) {
  GpuTurns turns;
  {
    auto turn = turns.take(Side::kStages);
    ASSERT_TRUE(turn.is_ok());
    GpuTurns::Turn moved = std::move(*turn);
    EXPECT_FALSE(turn->held());
    EXPECT_TRUE(moved.held());
  }
  auto waiting = std::async(std::launch::async, [&] {
    auto turn = turns.take(Side::kAnalysis);  // free: the stage side's turn ended with `moved`
    return turn.is_ok();
  });
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(waiting.get());
  GpuTurns::Turn none;
  EXPECT_FALSE(none.held());
  none.release();  // nothing to end
  EXPECT_EQ(turns.stats()[Side::kAnalysis].waits, 0u);
}

}  // namespace
}  // namespace fswap
