// ReferenceTracker: FaceFusion's reference mode over a video, without embedding every face of
// every frame (fr_feature costs ~47 ms a face on 2 cores).
//
//   ReferenceTracker tracker(options.selector);
//   tracker.set_reference(embedding);                 // or the first frame's reference_face
//   face_tracker.assign(faces);                       // FaceTracker: each face's track_id
//   FSWAP_ASSIGN_OR_RETURN(auto chosen, tracker.match(std::move(faces), embed_fn));
//
// A face whose track_id (face/face_tracker.h) was decided on a recent frame is the same person
// and keeps that decision; only new faces are embedded and compared with the reference, and
// every face is re-checked every kReverifyFrames frames. A face with track_id -1 is new on every
// frame. A track's decision is kept while it is unseen for up to kMaxMissedFrames frames, so a
// detection that flickers (and keeps its id) does not cost an embedding each time it returns.
// One instance per video; not thread-safe.
#pragma once

#include <functional>
#include <vector>

#include "core/status.h"
#include "face/face.h"
#include "face/selector.h"

namespace fswap {

class ReferenceTracker {
 public:
  static constexpr int kReverifyFrames = 30;
  static constexpr int kMaxMissedFrames = 10;

  using EmbedFn = std::function<Status(Face&)>;

  explicit ReferenceTracker(const SelectorOptions& options) : options_(options) {}

  bool has_reference() const { return !reference_.empty(); }
  void set_reference(std::vector<float> embedding) { reference_ = std::move(embedding); }

  // The faces of this frame that are the reference person, largest first. Without a reference,
  // this frame's reference_face (face/selector.h: --reference-face-position in the selector's
  // order) becomes the reference: the first frame with a face is the reference frame.
  // Call once per frame, in frame order, with distinct track ids (or -1).
  Result<std::vector<Face>> match(std::vector<Face> faces, const EmbedFn& embed);

 private:
  struct Track {
    int id = -1;  // Face::track_id
    bool matched = false;
    int missed = 0;  // frames since last seen
  };
  SelectorOptions options_;
  std::vector<float> reference_;
  std::vector<Track> tracks_;
  int frames_since_verify_ = 0;
};

}  // namespace fswap
