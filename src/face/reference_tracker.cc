#include "face/reference_tracker.h"

#include <algorithm>

namespace fswap {

Result<std::vector<Face>> ReferenceTracker::match(std::vector<Face> faces, const EmbedFn& embed) {
  if (reference_.empty() && !faces.empty()) {
    Face& chosen = faces[static_cast<std::size_t>(reference_face(faces, options_))];
    if (chosen.embedding.empty()) FSWAP_RETURN_IF_ERROR(embed(chosen));
    reference_ = chosen.embedding;
  }
  const bool reverify = ++frames_since_verify_ >= kReverifyFrames;
  if (reverify) frames_since_verify_ = 0;

  for (Track& t : tracks_) ++t.missed;
  std::vector<Face> matched;
  for (Face& f : faces) {
    auto track = std::find_if(tracks_.begin(), tracks_.end(), [&](const Track& t) { return t.id == f.track_id; });
    const bool tracked = track != tracks_.end();
    bool is_reference;
    if (tracked && !reverify) {
      is_reference = track->matched;
    } else {
      if (f.embedding.empty()) FSWAP_RETURN_IF_ERROR(embed(f));
      is_reference = face_distance(f.embedding, reference_) < options_.reference_distance;
    }
    if (tracked) {
      *track = {f.track_id, is_reference, 0};
    } else if (f.track_id >= 0) {  // untracked faces (-1) keep no decision
      tracks_.push_back({f.track_id, is_reference, 0});
    }
    if (is_reference) matched.push_back(std::move(f));
  }
  std::erase_if(tracks_, [](const Track& t) { return t.missed > kMaxMissedFrames; });
  std::stable_sort(matched.begin(), matched.end(), [](const Face& a, const Face& b) { return a.box.area() > b.box.area(); });
  return matched;
}

}  // namespace fswap
