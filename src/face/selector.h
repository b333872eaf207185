// Face selection: which of a frame's faces get swapped (FaceFusion's --face-selector-mode,
// -order, -gender, -race, -age-start/-end).
//
//   SelectorOptions o;  o.mode = SelectorMode::kOne;  o.order = FaceOrder::kLeftRight;
//   auto chosen = select_faces(faces, o);          // the leftmost face
//   o.filter.gender = "female";                   // needs each face's FaceClasses (fairface)
//   auto wanted = filter_faces(faces, classes, o.filter);
//   o.filter.race = "auto";                       // the largest source face's race:
//   FSWAP_ASSIGN_OR_RETURN(o.filter, resolve_auto_filter(o.filter, source_classes));
//   reference mode, which needs embeddings and tracking over frames: face/reference_tracker.h
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "face/classifier_fairface.h"
#include "face/face.h"

namespace fswap {

enum class SelectorMode {
  kOne,        // the first face in the selector order (by default the largest)
  kMany,       // every face, in the selector order
  kReference,  // faces similar enough to a reference face
};
Result<SelectorMode> parse_selector_mode(const std::string& text);  // "one" | "many" | "reference"

// FaceFusion's --face-selector-order (face_selector.py::sort_faces_by_order); a stable sort.
enum class FaceOrder {
  kLeftRight,   // box x1 ascending
  kRightLeft,   // box x1 descending
  kTopBottom,   // box y1 ascending
  kBottomTop,   // box y1 descending
  kSmallLarge,  // box area ascending
  kLargeSmall,  // box area descending (FaceFusion's default)
  kBestWorst,   // detector score descending
  kWorstBest,   // detector score ascending
};
// "left-right" | "right-left" | "top-bottom" | "bottom-top" | "small-large" | "large-small" |
// "best-worst" | "worst-best"
Result<FaceOrder> parse_face_order(const std::string& text);

// FaceFusion's --face-selector-gender/-race/-age-start/-age-end (face_selector.py::filter_faces_by_*).
// Unset members filter nothing; when any is set every face is classified by fairface.
// "auto" (gender or race) stands for the largest source face's class: resolve_auto_filter
// replaces it before any face is filtered.
struct FaceFilter {
  std::optional<std::string> gender;  // "female" | "male" | "auto"
  std::optional<std::string> race;    // "white" | "black" | "latino" | "asian" | "indian" | "arabic" | "auto"
  // Ages 0..100. As FaceFusion (`if age_start or age_end`), the age filter is on when either is
  // set and not 0; then an unset start is 0 and an unset end 100. A face passes when its bucket
  // range(age_first, age_last) and range(age_start, age_end) share an age (Python ranges: the end
  // left out, so start == end matches nothing).
  std::optional<int> age_start, age_end;
  bool filters_age() const { return age_start.value_or(0) != 0 || age_end.value_or(0) != 0; }
  bool active() const { return gender || race || filters_age(); }
  bool wants_source() const { return gender == "auto" || race == "auto"; }  // resolve_auto_filter first
};
// Checks the names ("auto" included) and the age range (0 ≤ start ≤ end ≤ 100); kInvalidInput
// naming the flag.
Status validate_face_filter(const FaceFilter& filter);
// The filter with "auto" replaced by the source face's gender and race (FaceFusion's
// sort_and_filter_faces: the largest source face, largest_face, classified by fairface); other
// members unchanged. source: that face's classes, nullopt when there is no source face, which is
// kInvalidInput when the filter wants one (FaceFusion would silently filter nothing).
Result<FaceFilter> resolve_auto_filter(const FaceFilter& filter, const std::optional<FaceClasses>& source);
// Needs a filter without "auto" (resolve_auto_filter).
bool face_passes(const FaceClasses& classes, const FaceFilter& filter);
// The faces whose classes pass, in their order; classes[i] belongs to faces[i].
std::vector<Face> filter_faces(std::vector<Face> faces, const std::vector<FaceClasses>& classes,
                               const FaceFilter& filter);

struct SelectorOptions {
  SelectorMode mode = SelectorMode::kReference;
  // FaceFusion's --reference-face-distance: d = (1 − cosine) / 2; a face matches when d < this,
  // so 0.3 means cosine similarity above 0.4.
  float reference_distance = 0.3f;
  // FaceFusion's --reference-face-position: the reference is this face of the reference frame,
  // counted in `order` (the last one when the frame has fewer).
  int reference_position = 0;
  FaceOrder order = FaceOrder::kLargeSmall;
  FaceFilter filter;
};

// FaceFusion's distance between two L2-normalised embeddings, in [0, 1].
float face_distance(const std::vector<float>& a, const std::vector<float>& b);

// The faces sorted by `order` (stable: ties keep their order).
std::vector<Face> sort_faces(std::vector<Face> faces, FaceOrder order);
// The same order as indices into `faces`.
std::vector<int> face_order(const std::vector<Face>& faces, FaceOrder order);

// The index of the reference face among a reference frame's faces (FaceFusion's
// get_one_face(sort_faces(faces), reference_face_position)): options.reference_position in
// options.order, the last one when there are fewer; -1 when faces is empty.
int reference_face(const std::vector<Face>& faces, const SelectorOptions& options);

// The faces to swap in modes kOne (the first in options.order) and kMany (all, in that order).
// Filtering by classes comes before (filter_faces), as in FaceFusion's sort_and_filter_faces.
std::vector<Face> select_faces(std::vector<Face> faces, const SelectorOptions& options);

// The largest face by box area, the first of equals (FaceFusion's large-small order, first);
// -1 when faces is empty.
int largest_face(const std::vector<Face>& faces);

// The best face of a source image: largest box weighted by how frontal the landmarks are.
// Faces need landmarks. Returns -1 when faces is empty.
int best_source_face(const std::vector<Face>& faces);
// 1 for a frontal face, toward 0 as the head turns (from landmark symmetry).
float frontality(const Face& face);

}  // namespace fswap
