#include "face/landmark_smoother.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace fswap {
namespace {

// Smoothing factor of a first-order low-pass with the given cutoff (cycles/frame), one frame apart.
float alpha_for(float cutoff) {
  const float tau = 1.f / (2.f * std::numbers::pi_v<float> * cutoff);
  return 1.f / (1.f + tau);
}

Point2f lerp(Point2f from, Point2f to, float a) { return {from.x + a * (to.x - from.x), from.y + a * (to.y - from.y)}; }

}  // namespace

void LandmarkSmoother::update(Track& t, Face& face) const {
  const float a_d = alpha_for(options_.derivative_cutoff);
  Point2f mean_motion{};
  for (std::size_t i = 0; i < 68; ++i) {
    mean_motion.x += face.landmarks68[i].x - t.raw[i].x;
    mean_motion.y += face.landmarks68[i].y - t.raw[i].y;
  }
  mean_motion = {mean_motion.x / 68, mean_motion.y / 68};
  t.face_velocity = lerp(t.face_velocity, mean_motion, a_d);
  const float face_speed = std::hypot(t.face_velocity.x, t.face_velocity.y);

  for (std::size_t i = 0; i < 68; ++i) {
    const Point2f x = face.landmarks68[i];
    // The point's own motion, relative to the face's: non-rigid (mouth, eyes) or jitter.
    const Point2f own{x.x - t.raw[i].x - mean_motion.x, x.y - t.raw[i].y - mean_motion.y};
    t.velocity[i] = lerp(t.velocity[i], own, a_d);
    const float own_speed = std::max(0.f, std::hypot(t.velocity[i].x, t.velocity[i].y) - options_.residual_deadzone_px);
    const float cutoff = options_.min_cutoff + options_.beta * (face_speed + own_speed);
    t.smoothed[i] = lerp(t.smoothed[i], x, alpha_for(cutoff));
    t.raw[i] = x;
  }
  face.landmarks68 = t.smoothed;
  face.landmarks5 = landmarks5_from_68(face.landmarks68);
  t.missed = 0;
  t.seen = true;
}

void LandmarkSmoother::smooth(std::vector<Face>& faces) {
  for (Track& t : tracks_) t.seen = false;
  for (Face& f : faces) {
    if (!f.has_landmarks) continue;
    auto track = std::find_if(tracks_.begin(), tracks_.end(), [&](const Track& t) { return t.id == f.track_id; });
    if (track != tracks_.end()) {
      update(*track, f);
    } else if (f.track_id >= 0) {  // untracked faces (-1) keep no state
      Track t;
      t.id = f.track_id;
      t.raw = t.smoothed = f.landmarks68;
      t.velocity.fill({});
      t.seen = true;
      tracks_.push_back(std::move(t));
    }
  }
  for (Track& t : tracks_)
    if (!t.seen) ++t.missed;
  std::erase_if(tracks_, [&](const Track& t) { return t.missed > options_.max_missed_frames; });
}

}  // namespace fswap
