// LandmarkSmoother: removes frame-to-frame jitter from the 68 landmarks of faces in a video.
//
//   LandmarkSmoother smoother;                 // one per video
//   for each frame: auto faces = analyser.analyse(frame);  face_tracker.assign(faces);
//                   smoother.smooth(faces);
//
// Each face's filter state is kept under its track_id (FaceTracker, face/face_tracker.h; a face
// with track_id -1 is new on every frame). A tracked face's landmarks go through a One-Euro
// low-pass filter (Casiez et al. 2012): the cutoff rises with speed, so slow jitter is removed
// while fast motion is followed with little lag. The speed is the whole face's (mean of its 68
// points' motion, robust to per-point noise) plus any point's own motion beyond
// residual_deadzone_px (a mouth opening fast). landmarks5 is recomputed from the smoothed 68.
// A face with no state yet passes through unchanged; states unseen for more than
// max_missed_frames frames are dropped. Time is counted in frames (a constant frame rate is
// assumed).
// Not thread-safe; call smooth() once per frame, in frame order.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "face/face.h"

namespace fswap {

struct LandmarkSmootherOptions {
  float min_cutoff = 0.05f;          // cycles per frame at rest (lower: smoother, more lag)
  float beta = 0.15f;                // cutoff increase per px/frame of speed
  float derivative_cutoff = 0.3f;    // cycles per frame for the speed estimate
  float residual_deadzone_px = 5.f;  // a point's own speed (px/frame) below this is jitter
  int max_missed_frames = 10;        // a track's state unseen for longer is dropped
};

class LandmarkSmoother {
 public:
  explicit LandmarkSmoother(LandmarkSmootherOptions options = {}) : options_(options) {}

  // Smooths landmarks68 (and landmarks5) of the faces of one frame in place. Faces without
  // landmarks are left alone and keep no state. Track ids must be distinct (or -1).
  void smooth(std::vector<Face>& faces);

  std::size_t track_count() const { return tracks_.size(); }

 private:
  struct Track {
    int id = -1;                       // Face::track_id
    std::array<Point2f, 68> raw;       // last frame's input
    std::array<Point2f, 68> smoothed;  // last frame's output
    std::array<Point2f, 68> velocity;  // filtered per-point speed, px/frame
    Point2f face_velocity;             // filtered mean speed, px/frame
    int missed = 0;
    bool seen = false;                 // updated this frame
  };
  void update(Track& track, Face& face) const;

  LandmarkSmootherOptions options_;
  std::vector<Track> tracks_;
};

}  // namespace fswap
