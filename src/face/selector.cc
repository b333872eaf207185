#include "face/selector.h"

#include <algorithm>
#include <cmath>

namespace fswap {

Result<SelectorMode> parse_selector_mode(const std::string& text) {
  if (text == "one") return SelectorMode::kOne;
  if (text == "many") return SelectorMode::kMany;
  if (text == "reference") return SelectorMode::kReference;
  return invalid_input("unknown face selector mode '" + text + "' (one, many, reference)");
}

float face_distance(const std::vector<float>& a, const std::vector<float>& b) {
  return (1.f - embedding_similarity(a, b)) / 2.f;
}

std::vector<Face> select_faces(std::vector<Face> faces, SelectorMode mode) {
  FSWAP_CHECK(mode != SelectorMode::kReference, "reference mode goes through ReferenceTracker");
  std::stable_sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.box.area() > b.box.area(); });
  if (mode == SelectorMode::kOne && faces.size() > 1) faces.resize(1);
  return faces;
}

float frontality(const Face& face) {
  const auto& p = face.landmarks68;
  // Yaw: the nose tip sits midway between the jaw sides on a frontal face.
  const float left = p[lmk68::kNoseTip].x - p[lmk68::kJawFirst].x;
  const float right = p[lmk68::kJawLast].x - p[lmk68::kNoseTip].x;
  const float span = left + right;
  if (span <= 0) return 0.f;
  return std::clamp(1.f - std::abs(left - right) / span, 0.f, 1.f);
}

int best_source_face(const std::vector<Face>& faces) {
  int best = -1;
  float best_score = -1;
  for (std::size_t i = 0; i < faces.size(); ++i) {
    const float s = faces[i].box.area() * frontality(faces[i]);
    if (s > best_score) {
      best_score = s;
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace fswap
