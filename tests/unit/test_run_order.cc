// RunOrder (memory/run_order.h): the next run predicted from the order runs were issued in.
#include <gtest/gtest.h>

#include "memory/run_order.h"

namespace fswap::memory {
namespace {

const int kA = 0, kB = 0, kC = 0;  // three executors: their addresses identify them
const void* const a = &kA;
const void* const b = &kB;
const void* const c = &kC;

// Models run in turn: once each has been seen, each predicts the one after it.
TEST(RunOrder, APipelineOfModelsInTurnPredictsTheNextModel) {
  RunOrder order;
  EXPECT_EQ(order.ran(0, a), nullptr);  // nothing learnt yet
  EXPECT_EQ(order.ran(0, b), nullptr);
  EXPECT_EQ(order.ran(0, c), nullptr);
  EXPECT_EQ(order.ran(0, a), b);  // a was followed by b
  EXPECT_EQ(order.ran(0, b), c);
  EXPECT_EQ(order.ran(0, c), a);
}

// A model that ran several times in a row (a window of frames through one stage) predicts
// nothing at its next first run: its weights would be pushed out for the next stage's while it
// still has frames to do. Once it runs once at a time again, it predicts again.
TEST(RunOrder, AModelThatRanSeveralTimesInARowPredictsNothing) {
  RunOrder order;
  for (const void* run : {a, a, a, b, b}) EXPECT_EQ(order.ran(0, run), nullptr);
  EXPECT_EQ(order.ran(0, a), nullptr);  // a was followed by b, but ran three times in a row
  EXPECT_EQ(order.ran(0, a), nullptr);  // a again: a run that repeats predicts nothing
  EXPECT_EQ(order.ran(0, b), nullptr);  // b's last streak repeated too
  EXPECT_EQ(order.ran(0, c), nullptr);  // c never ran
  EXPECT_EQ(order.ran(0, b), c);        // b's last streak (one run) was followed by c
  EXPECT_EQ(order.ran(0, a), nullptr);  // a's last streak (two runs) repeated
  EXPECT_EQ(order.ran(0, b), a);        // b once, followed by a
}

// Lanes learn apart: the analysis lane's runs do not follow the stages'.
TEST(RunOrder, EachLaneHasItsOwnOrder) {
  RunOrder order;
  for (int pass = 0; pass < 2; ++pass) {
    order.ran(0, a);
    order.ran(1, c);
    order.ran(0, b);
  }
  EXPECT_EQ(order.ran(0, a), b);
  EXPECT_EQ(order.ran(1, c), nullptr);  // only ever followed by itself on lane 1
}

// A forgotten run is predicted no more.
TEST(RunOrder, AForgottenRunIsNoSuccessorAnyMore) {
  RunOrder kept, forgotten;
  for (RunOrder* order : {&kept, &forgotten})
    for (const void* run : {a, b, a}) order->ran(0, run);
  forgotten.forget(b);
  EXPECT_EQ(kept.ran(1, a), b);
  EXPECT_EQ(forgotten.ran(1, a), nullptr);
}

}  // namespace
}  // namespace fswap::memory
