// plan_stages: the window and lanes of a job's face work from its weights, the budget, the
// measured compute and the host memory of the held frames.
#include <gtest/gtest.h>

#include <algorithm>

#include "pipeline/stage_plan.h"

namespace fswap {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kGiB = 1ull << 30;

StagePlanInput two_stages() {
  StagePlanInput in;
  in.batch_frames = 8;
  in.stage_weight_bytes = {530 * kMiB, 340 * kMiB};  // inswapper_128, gfpgan_1.4
  in.resident_weight_bytes = 200 * kMiB;             // detector, landmarker, arcface
  in.frame_bytes = 1920 * 1080 * 3;
  in.host_frames_cap_bytes = 16 * kGiB;  // a 128 GiB machine's: 4 windows of 690 frames
  return in;
}

TEST(StagePlan, BatchOfOneIsThePerFramePathWhileTheWeightsFit) {
  StagePlanInput in = two_stages();
  in.batch_frames = 1;
  const StagePlan plan = plan_stages(in);
  EXPECT_EQ(plan.window, 1);
  EXPECT_EQ(plan.lanes, 1);
  EXPECT_EQ(plan.reason, WindowReason::kPerFrame);
}

// Over budget, batch 1 still runs stage-major: a window long enough for the reloads, one lane.
TEST(StagePlan, BatchOfOneOverBudgetGetsAWindowWithOneLane) {
  StagePlanInput in = two_stages();
  in.batch_frames = 1;
  in.budget_bytes = 100 * kMiB;
  EXPECT_EQ(plan_stages(in).window, 1);  // not measured yet: the first window measures
  EXPECT_EQ(plan_stages(in).reason, WindowReason::kNotMeasured);
  in.compute_s_per_frame = 0.010;
  const StagePlan plan = plan_stages(in);
  EXPECT_GT(plan.window, 1);
  EXPECT_EQ(plan.lanes, 1);
  EXPECT_EQ(plan.reason, WindowReason::kReloadBound);
  EXPECT_LE(plan.reload_fraction, in.max_reload_fraction + 1e-12);
}

TEST(StagePlan, WithoutABudgetTheWindowIsTheBatch) {
  const StagePlan plan = plan_stages(two_stages());  // the CPU: no budget
  EXPECT_TRUE(plan.weights_fit);
  EXPECT_EQ(plan.window, 8);
  EXPECT_EQ(plan.lanes, 8);
  EXPECT_EQ(plan.reason, WindowReason::kWeightsFit);
  EXPECT_EQ(plan.reload_s, 0);
}

// Weights that fit by their bytes but were evicted during the last window (activations and
// workspace need room too) are planned as not fitting.
TEST(StagePlan, EvictionsMakeTheWeightsCountAsNotFitting) {
  StagePlanInput in = two_stages();
  in.batch_frames = 1;
  in.budget_bytes = (200 + 530 + 340) * kMiB;
  in.evicting = true;
  in.compute_s_per_frame = 0.010;
  const StagePlan plan = plan_stages(in);
  EXPECT_FALSE(plan.weights_fit);
  EXPECT_EQ(plan.reason, WindowReason::kReloadBound);
  EXPECT_GT(plan.window, 1);
  EXPECT_EQ(plan.lanes, 1);
}

// The reloads measured in the last window, when known, replace the stages' weight bytes.
TEST(StagePlan, MeasuredReloadsSetTheWindow) {
  StagePlanInput in = two_stages();
  in.batch_frames = 1;
  in.budget_bytes = 100 * kMiB;
  in.copy_bytes_per_s = 100.0 * kMiB;   // 1 s per 100 MiB
  in.compute_s_per_frame = 1.0;
  in.measured_reload_bytes = 200 * kMiB;  // 2 s a window: ≤ 5% needs 40 frames of compute
  const StagePlan plan = plan_stages(in);
  EXPECT_EQ(plan.window, 40);
  EXPECT_DOUBLE_EQ(plan.reload_s, 2.0);
}

TEST(StagePlan, WeightsThatFitTheBudgetKeepTheBatch) {
  StagePlanInput in = two_stages();
  in.budget_bytes = (200 + 530 + 340) * kMiB;  // exactly
  const StagePlan plan = plan_stages(in);
  EXPECT_TRUE(plan.weights_fit);
  EXPECT_EQ(plan.window, 8);
  EXPECT_EQ(plan.reason, WindowReason::kWeightsFit);
}

TEST(StagePlan, WeightsOverBudgetGetAWindowLongEnoughForFivePercent) {
  StagePlanInput in = two_stages();
  in.budget_bytes = 1 * kGiB - 1;  // 1070 MiB needed
  in.copy_bytes_per_s = 1070.0 * kMiB;  // 1 s to copy the analysis and both stages in
  in.compute_s_per_frame = 0.5;
  const StagePlan plan = plan_stages(in);
  EXPECT_FALSE(plan.weights_fit);
  EXPECT_EQ(plan.reason, WindowReason::kReloadBound);
  EXPECT_NEAR(plan.reload_s, 1.0, 1e-9);
  // 1 s ≤ 0.05 · W · 0.5 s  ⇔  W ≥ 40.
  EXPECT_EQ(plan.window, 40);
  EXPECT_EQ(plan.lanes, 8);
  EXPECT_LE(plan.reload_fraction, 0.05 + 1e-12);
  in.compute_s_per_frame = 0.5 * 40 / 39;  // W = 39 now suffices; one frame fewer is not enough
  EXPECT_EQ(plan_stages(in).window, 39);
  in.compute_s_per_frame = 100;  // compute dwarfs the reload: the batch is the floor
  EXPECT_EQ(plan_stages(in).window, 8);
}

TEST(StagePlan, BeforeAnyMeasureTheWindowIsTheBatch) {
  StagePlanInput in = two_stages();
  in.budget_bytes = 512 * kMiB;
  const StagePlan plan = plan_stages(in);
  EXPECT_FALSE(plan.weights_fit);
  EXPECT_EQ(plan.reason, WindowReason::kNotMeasured);
  EXPECT_EQ(plan.window, 8);
  EXPECT_EQ(plan.reload_fraction, 0);
}

TEST(StagePlan, TheHostMemoryCapBindsOnLargeFrames) {
  StagePlanInput in = two_stages();
  in.budget_bytes = 512 * kMiB;
  in.copy_bytes_per_s = 1070.0 * kMiB;
  in.compute_s_per_frame = 0.5;         // wants 40 frames
  in.frame_bytes = 3840ull * 2160 * 3;  // 4K: 23.7 MiB
  in.host_frames_cap_bytes = 4 * kGiB;  // 4 windows of 43
  EXPECT_EQ(plan_stages(in).window, 40);
  in.host_frames_cap_bytes = 2 * kGiB;  // 4 windows of 21
  StagePlan plan = plan_stages(in);
  EXPECT_EQ(plan.reason, WindowReason::kHostMemoryCap);
  EXPECT_EQ(plan.window, 21);
  EXPECT_LE(kWindowsHeld * plan.window * in.frame_bytes, in.host_frames_cap_bytes);
  EXPECT_GT(plan.reload_fraction, 0.05);  // said, not hidden
  in.host_frames_cap_bytes = 200 * kMiB;  // 2 frames a window: fewer lanes than the batch
  plan = plan_stages(in);
  EXPECT_EQ(plan.window, 2);
  EXPECT_EQ(plan.lanes, 2);
  in.host_frames_cap_bytes = 1;  // never below one frame
  EXPECT_EQ(plan_stages(in).window, 1);
  EXPECT_EQ(plan_stages(in).lanes, 1);
}

// A job's cap is an eighth of the machine's memory, at least 1 GiB (unknown memory: 1 GiB).
TEST(StagePlan, TheHostCapIsAnEighthOfTheMachinesMemory) {
  EXPECT_EQ(host_frames_cap(0), kGiB);
  EXPECT_EQ(host_frames_cap(4 * kGiB), kGiB);
  EXPECT_EQ(host_frames_cap(24 * kGiB), 3 * kGiB);
  EXPECT_EQ(host_frames_cap(128 * kGiB), 16 * kGiB);
  const std::uint64_t here = physical_memory_bytes();
  EXPECT_GT(here, kGiB) << "sysconf gave no physical memory";
  EXPECT_EQ(host_frames_cap(here), std::max(kGiB, here / 8));
}

TEST(StagePlan, TheTextSaysTheWindowAndWhy) {
  StagePlanInput in = two_stages();
  EXPECT_EQ(plan_stages(in).to_string(), "window 8 frames, 8 lanes (weights fit)");
  in.budget_bytes = 512 * kMiB;
  in.copy_bytes_per_s = 1070.0 * kMiB;
  in.compute_s_per_frame = 0.5;
  EXPECT_EQ(plan_stages(in).to_string(),
            "window 40 frames, 8 lanes (weights over budget: reloads within the compute share); reload 1000.00 ms "
            "per window, 5.0% of compute; analysis and stages take turns on the GPU");
}

// The analysis and the stages take turns on the GPU exactly when the weights do not fit: over
// the budget by their bytes, or evicted during the last window; never without a budget.
TEST(StagePlan, AnalysisAndStagesTakeTurnsExactlyWhenTheWeightsDoNotFit) {
  StagePlanInput in = two_stages();
  EXPECT_FALSE(plan_stages(in).take_turns);  // the CPU: no budget
  in.budget_bytes = (200 + 530 + 340) * kMiB;
  EXPECT_FALSE(plan_stages(in).take_turns);  // fits exactly
  in.evicting = true;
  EXPECT_TRUE(plan_stages(in).take_turns);
  in.evicting = false;
  in.budget_bytes = (200 + 530 + 340) * kMiB - 1;
  EXPECT_TRUE(plan_stages(in).take_turns);
  in.batch_frames = 1;  // the per-frame default takes turns too, over a window of its own
  in.compute_s_per_frame = 0.010;
  const StagePlan plan = plan_stages(in);
  EXPECT_TRUE(plan.take_turns);
  EXPECT_GT(plan.window, 1);
  for (const int batch : {1, 8}) {
    StagePlanInput fit = two_stages();
    fit.batch_frames = batch;
    fit.budget_bytes = 4 * kGiB;
    EXPECT_FALSE(plan_stages(fit).take_turns) << batch;
    EXPECT_EQ(plan_stages(fit).to_string().find("turns"), std::string::npos) << batch;
  }
}

// Taking turns, each window reloads the analysis models' weights as well as the stages', unless
// the bytes copied in the last window were measured.
TEST(StagePlan, TheReloadEstimateCountsTheAnalysisWeightsWhenTakingTurns) {
  StagePlanInput in = two_stages();
  in.budget_bytes = 512 * kMiB;
  in.copy_bytes_per_s = 100.0 * kMiB;  // 1 s per 100 MiB
  in.compute_s_per_frame = 1.5;        // 5% of a frame: 0.075 s
  StagePlan plan = plan_stages(in);
  ASSERT_TRUE(plan.take_turns);
  EXPECT_DOUBLE_EQ(plan.reload_s, (200 + 530 + 340) / 100.0);  // not the stages' 8.7 s alone
  EXPECT_EQ(plan.window, 143);                                   // 10.7 s / 0.075 s = 142.7
  in.resident_weight_bytes = 0;
  plan = plan_stages(in);
  EXPECT_DOUBLE_EQ(plan.reload_s, (530 + 340) / 100.0);
  EXPECT_LT(plan.window, 143);
  in.resident_weight_bytes = 200 * kMiB;
  in.measured_reload_bytes = 320 * kMiB;  // measured: it replaces the estimate
  plan = plan_stages(in);
  EXPECT_DOUBLE_EQ(plan.reload_s, 3.2);
  EXPECT_EQ(plan.window, 43);  // 3.2 s / 0.075 s = 42.7
  in.measured_recapture_s = 0.8;  // graphs captured again each window cost like reloads
  plan = plan_stages(in);
  EXPECT_DOUBLE_EQ(plan.reload_s, 4.0);
  EXPECT_EQ(plan.window, 54);  // 4.0 s / 0.075 s = 53.3
}

}  // namespace
}  // namespace fswap
