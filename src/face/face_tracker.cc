#include "face/face_tracker.h"

#include <algorithm>

namespace fswap {

FaceTracker::Track* FaceTracker::find(int id) {
  auto it = std::find_if(tracks_.begin(), tracks_.end(), [&](const Track& t) { return t.id == id; });
  return it == tracks_.end() ? nullptr : &*it;
}

void FaceTracker::associate_by_iou(std::vector<Face>& faces) {
  struct Pair {
    float overlap;
    std::size_t face, track;
  };
  std::vector<Pair> pairs;
  for (std::size_t f = 0; f < faces.size(); ++f) {
    if (faces[f].track_id >= 0) continue;
    for (std::size_t t = 0; t < tracks_.size(); ++t) {
      if (tracks_[t].seen) continue;
      const float overlap = iou(tracks_[t].box, faces[f].box);
      if (overlap > options_.min_iou) pairs.push_back({overlap, f, t});
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.overlap > b.overlap; });
  for (const Pair& p : pairs) {
    Face& face = faces[p.face];
    Track& track = tracks_[p.track];
    if (face.track_id >= 0 || track.seen) continue;
    face.track_id = track.id;
    track.seen = true;
  }
}

void FaceTracker::assign(std::vector<Face>& faces) {
  for (Track& t : tracks_) t.seen = false;
  for (Face& f : faces) {
    Track* kept = f.track_id >= 0 ? find(f.track_id) : nullptr;
    if (kept && !kept->seen) {
      kept->seen = true;
    } else {
      f.track_id = -1;  // not a live track's (or a second face claiming one): associated below
    }
  }
  associate_by_iou(faces);
  for (Track& t : tracks_)
    if (!t.seen) ++t.missed;
  std::erase_if(tracks_, [&](const Track& t) { return t.missed > options_.max_missed_frames; });
  for (Face& f : faces) {
    if (f.track_id < 0) {
      f.track_id = next_id_++;
      tracks_.push_back({f.track_id, f.box, 0, true});
    } else {
      Track& t = *find(f.track_id);
      t.box = f.box;
      t.missed = 0;
    }
  }
}

}  // namespace fswap
