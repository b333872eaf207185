// Face selection: which of a frame's faces get swapped (FaceFusion's --face-selector-mode).
//
//   auto chosen = select_faces(faces, SelectorMode::kOne);
//   reference mode, which needs embeddings and tracking over frames: face/reference_tracker.h
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "face/face.h"

namespace fswap {

enum class SelectorMode {
  kOne,        // the largest face
  kMany,       // every face
  kReference,  // faces similar enough to a reference face
};
Result<SelectorMode> parse_selector_mode(const std::string& text);  // "one" | "many" | "reference"

struct SelectorOptions {
  SelectorMode mode = SelectorMode::kReference;
  // FaceFusion's --reference-face-distance: d = (1 − cosine) / 2; a face matches when d < this,
  // so 0.3 means cosine similarity above 0.4.
  float reference_distance = 0.3f;
};

// FaceFusion's distance between two L2-normalised embeddings, in [0, 1].
float face_distance(const std::vector<float>& a, const std::vector<float>& b);

// The faces to swap in modes kOne (the largest) and kMany (all, largest first).
std::vector<Face> select_faces(std::vector<Face> faces, SelectorMode mode);

// The best face of a source image: largest box weighted by how frontal the landmarks are.
// Faces need landmarks. Returns -1 when faces is empty.
int best_source_face(const std::vector<Face>& faces);
// 1 for a frontal face, toward 0 as the head turns (from landmark symmetry).
float frontality(const Face& face);

}  // namespace fswap
