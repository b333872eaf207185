// LandmarkSmoother on synthetic landmark tracks (ids from FaceTracker): jitter removed, motion
// followed, faces kept apart.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "face/face_tracker.h"
#include "face/landmark_smoother.h"

namespace fswap {
namespace {

// A 68-point face: points on a 100×120 ellipse-ish grid around (cx, cy), box around them.
Face make_face(float cx, float cy) {
  Face f;
  f.has_landmarks = true;
  for (int i = 0; i < 68; ++i) {
    const float angle = 2.f * 3.14159265f * i / 68;
    const float r = 0.3f + 0.7f * static_cast<float>(i % 5) / 4;
    f.landmarks68[i] = {cx + 50 * r * std::cos(angle), cy + 60 * r * std::sin(angle)};
  }
  f.landmarks5 = landmarks5_from_68(f.landmarks68);
  f.box = {cx - 60, cy - 70, cx + 60, cy + 70};
  f.score = 0.9f;
  return f;
}

// FaceTracker's ids, then the smoother, as the pipeline runs them.
struct TrackedSmoother {
  explicit TrackedSmoother(LandmarkSmootherOptions options = {}) : smoother(options) {}
  void smooth(std::vector<Face>& faces) {
    ids.assign(faces);
    smoother.smooth(faces);
  }
  std::size_t track_count() const { return smoother.track_count(); }
  FaceTracker ids;
  LandmarkSmoother smoother;
};

void add_jitter(Face& f, std::mt19937& rng, float sigma) {
  std::normal_distribution<float> noise(0.f, sigma);
  for (auto& p : f.landmarks68) p.x += noise(rng), p.y += noise(rng);
}

// Variance of frame-to-frame landmark motion over a sequence, per coordinate.
double step_variance(const std::vector<std::array<Point2f, 68>>& frames) {
  double sum = 0, sum2 = 0;
  std::size_t n = 0;
  for (std::size_t t = 1; t < frames.size(); ++t)
    for (int i = 0; i < 68; ++i)
      for (double d : {frames[t][i].x - frames[t - 1][i].x, frames[t][i].y - frames[t - 1][i].y}) sum += d, sum2 += d * d, ++n;
  const double mean = sum / n;
  return sum2 / n - mean * mean;
}

TEST(LandmarkSmoother, StaticFaceJitterVarianceDropsAtLeastFourfold) {
  std::mt19937 rng(1234);
  TrackedSmoother smoother;
  std::vector<std::array<Point2f, 68>> raw, smoothed;
  for (int t = 0; t < 200; ++t) {
    std::vector<Face> faces{make_face(200, 200)};
    add_jitter(faces[0], rng, 1.5f);
    raw.push_back(faces[0].landmarks68);
    smoother.smooth(faces);
    smoothed.push_back(faces[0].landmarks68);
  }
  const double ratio = step_variance(raw) / step_variance(smoothed);
  std::printf("jitter step variance: raw %.3f px², smoothed %.3f px², reduction %.1f×\n", step_variance(raw),
              step_variance(smoothed), ratio);
  EXPECT_GE(ratio, 4.0);
}

TEST(LandmarkSmoother, FastMotionIsFollowedWithLittleLag) {
  TrackedSmoother smoother;
  constexpr float kSpeed = 6.f;  // px per frame
  double worst_lag = 0;
  for (int t = 0; t < 60; ++t) {
    std::vector<Face> faces{make_face(100 + kSpeed * t, 200)};
    const Face truth = faces[0];
    smoother.smooth(faces);
    if (t < 8) continue;  // warm-up
    for (int i = 0; i < 68; ++i)
      worst_lag = std::max<double>(worst_lag, std::hypot(faces[0].landmarks68[i].x - truth.landmarks68[i].x,
                                                         faces[0].landmarks68[i].y - truth.landmarks68[i].y));
  }
  std::printf("lag at %.0f px/frame after 8 frames: %.3f px\n", kSpeed, worst_lag);
  EXPECT_LT(worst_lag, 1.5);
}

TEST(LandmarkSmoother, FastMotionWithJitterIsFollowed) {
  std::mt19937 rng(99);
  TrackedSmoother smoother;
  double lag_sum = 0;
  int n = 0;
  for (int t = 0; t < 100; ++t) {
    std::vector<Face> faces{make_face(100 + 6.f * t, 300)};
    const Face truth = faces[0];
    add_jitter(faces[0], rng, 1.5f);
    smoother.smooth(faces);
    if (t < 8) continue;
    for (int i = 0; i < 68; ++i) lag_sum += truth.landmarks68[i].x - faces[0].landmarks68[i].x, ++n;
  }
  std::printf("mean lag at 6 px/frame with jitter: %.3f px\n", lag_sum / n);
  EXPECT_LT(std::abs(lag_sum / n), 1.5);
}

TEST(LandmarkSmoother, TwoFacesAreTrackedIndependently) {
  std::mt19937 rng(7);
  TrackedSmoother smoother;
  std::vector<std::array<Point2f, 68>> raw_a, smooth_a, smooth_b;
  for (int t = 0; t < 100; ++t) {
    // Face A still with jitter at the left, face B moving right at 6 px/frame far from it.
    std::vector<Face> faces{make_face(100, 200), make_face(400 + 6.f * t, 200)};
    add_jitter(faces[0], rng, 1.5f);
    const Face truth_b = faces[1];
    raw_a.push_back(faces[0].landmarks68);
    smoother.smooth(faces);
    smooth_a.push_back(faces[0].landmarks68);
    smooth_b.push_back(faces[1].landmarks68);
    if (t >= 8) {
      for (int i = 0; i < 68; ++i) EXPECT_NEAR(faces[1].landmarks68[i].x, truth_b.landmarks68[i].x, 1.5);
    }
    EXPECT_NEAR(faces[0].landmarks68[0].x, 100 + 50.f * 0.3f, 3.f);  // never pulled towards B
  }
  EXPECT_EQ(smoother.track_count(), 2u);
  EXPECT_GE(step_variance(raw_a) / step_variance(smooth_a), 4.0);
}

TEST(LandmarkSmoother, NewFacePassesThroughUnchanged) {
  TrackedSmoother smoother;
  std::vector<Face> first{make_face(100, 100)};
  smoother.smooth(first);
  EXPECT_EQ(smoother.track_count(), 1u);
  // A second face appears far away: no track, so its landmarks are exactly the input.
  std::mt19937 rng(3);
  std::vector<Face> faces{make_face(101, 100), make_face(500, 400)};
  add_jitter(faces[1], rng, 1.5f);
  const Face fresh = faces[1];
  smoother.smooth(faces);
  for (int i = 0; i < 68; ++i) {
    EXPECT_EQ(faces[1].landmarks68[i].x, fresh.landmarks68[i].x);
    EXPECT_EQ(faces[1].landmarks68[i].y, fresh.landmarks68[i].y);
  }
  for (int i = 0; i < 5; ++i) EXPECT_EQ(faces[1].landmarks5[i].x, fresh.landmarks5[i].x);
  EXPECT_EQ(smoother.track_count(), 2u);
}

TEST(LandmarkSmoother, UnseenTracksAreDropped) {
  LandmarkSmootherOptions options;
  options.max_missed_frames = 3;
  TrackedSmoother smoother(options);
  std::vector<Face> faces{make_face(100, 100)};
  smoother.smooth(faces);
  for (int t = 0; t < 3; ++t) {
    std::vector<Face> none;
    smoother.smooth(none);
  }
  EXPECT_EQ(smoother.track_count(), 1u);
  std::vector<Face> none;
  smoother.smooth(none);
  EXPECT_EQ(smoother.track_count(), 0u);
  // Returning after the drop: a new face again, passed through unchanged.
  std::vector<Face> back{make_face(120, 100)};
  const Face input = back[0];
  smoother.smooth(back);
  EXPECT_EQ(back[0].landmarks68[10].x, input.landmarks68[10].x);
}

}  // namespace
}  // namespace fswap
