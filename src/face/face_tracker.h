// FaceTracker: gives each face of a video a stable identity (Face::track_id) from frame to frame,
// the one association every per-face temporal step keys its state by (LandmarkSmoother,
// ReferenceTracker).
//
//   FaceTracker face_tracker;                  // one per video (or per segment)
//   for each frame:
//     faces = analyser.analyse(frame)  or  analyser.follow(frame, previous);
//     face_tracker.assign(faces);              // every face gets a track_id >= 0
//     smoother.smooth(faces);  reference_tracker.match(faces, embed);
//
// Per frame, in frame order:
// - A face that already carries the id of a live track keeps it (FaceAnalyser::follow copies the
//   id of the face it followed), whatever its box.
// - The other faces are associated with the remaining live tracks greedily by box IoU: the pair
//   with the highest IoU first, then the next among the faces and tracks still free; a pair
//   counts only above options.min_iou.
// - A face left over starts a new track: ids count up from 0 and are never reused.
// - A track unseen for more than options.max_missed_frames frames is dropped; its face, if it
//   returns, gets a new id.
// Time is counted in calls to assign(). Not thread-safe.
#pragma once

#include <vector>

#include "face/face.h"

namespace fswap {

struct FaceTrackerOptions {
  float min_iou = 0.5f;        // a face and a track overlap by more: the same face
  int max_missed_frames = 10;  // a track unseen for longer is dropped
};

class FaceTracker {
 public:
  explicit FaceTracker(FaceTrackerOptions options = {}) : options_(options) {}

  // Sets track_id on every face of this frame (see above). The faces' order is kept.
  void assign(std::vector<Face>& faces);

  std::size_t track_count() const { return tracks_.size(); }

 private:
  struct Track {
    int id = -1;
    FaceBox box;     // the box it was last seen with
    int missed = 0;  // frames since last seen
    bool seen = false;  // this frame
  };
  // The live track with this id, or null.
  Track* find(int id);
  void associate_by_iou(std::vector<Face>& faces);

  FaceTrackerOptions options_;
  std::vector<Track> tracks_;
  int next_id_ = 0;
};

}  // namespace fswap
