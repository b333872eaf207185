#include "face/selector.h"

#include <algorithm>
#include <numeric>
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

Result<FaceOrder> parse_face_order(const std::string& text) {
  static const std::pair<const char*, FaceOrder> kOrders[] = {
      {"left-right", FaceOrder::kLeftRight},   {"right-left", FaceOrder::kRightLeft},
      {"top-bottom", FaceOrder::kTopBottom},   {"bottom-top", FaceOrder::kBottomTop},
      {"small-large", FaceOrder::kSmallLarge}, {"large-small", FaceOrder::kLargeSmall},
      {"best-worst", FaceOrder::kBestWorst},   {"worst-best", FaceOrder::kWorstBest}};
  for (const auto& [name, order] : kOrders)
    if (text == name) return order;
  return invalid_input("unknown face selector order '" + text +
                       "' (left-right, right-left, top-bottom, bottom-top, small-large, large-small, best-worst, "
                       "worst-best)");
}

Status validate_face_filter(const FaceFilter& filter) {
  if (filter.gender && *filter.gender != "female" && *filter.gender != "male" && *filter.gender != "auto")
    return invalid_input("--face-selector-gender: unknown gender '" + *filter.gender + "' (female, male, auto)");
  static const char* kRaces[] = {"white", "black", "latino", "asian", "indian", "arabic", "auto"};
  if (filter.race && std::find(std::begin(kRaces), std::end(kRaces), *filter.race) == std::end(kRaces))
    return invalid_input("--face-selector-race: unknown race '" + *filter.race +
                         "' (white, black, latino, asian, indian, arabic, auto)");
  const int start = filter.age_start.value_or(0), end = filter.age_end.value_or(100);
  if (start < 0 || start > 100 || end < 0 || end > 100 || start > end)
    return invalid_input("--face-selector-age-start/-end: " + std::to_string(start) + ".." + std::to_string(end) +
                         " is not a range within 0..100");
  return Status::ok();
}

Result<FaceFilter> resolve_auto_filter(const FaceFilter& filter, const std::optional<FaceClasses>& source) {
  if (!filter.wants_source()) return filter;
  if (!source)
    return invalid_input(std::string(filter.gender == "auto" ? "--face-selector-gender" : "--face-selector-race") +
                         " auto takes the largest source face's class, but there is no source face (auto needs "
                         "the face_swapper processor and a face in a source image)");
  FaceFilter resolved = filter;
  if (resolved.gender == "auto") resolved.gender = source->gender;
  if (resolved.race == "auto") resolved.race = source->race;
  return resolved;
}

bool face_passes(const FaceClasses& classes, const FaceFilter& filter) {
  FSWAP_CHECK(!filter.wants_source(), "face_passes needs the filter's auto resolved (resolve_auto_filter)");
  if (filter.gender && classes.gender != *filter.gender) return false;
  if (filter.race && classes.race != *filter.race) return false;
  if (filter.filters_age()) {
    // set(range(age_first, age_last)) & set(range(start, end)) is not empty.
    const int start = filter.age_start.value_or(0), end = filter.age_end.value_or(100);
    if (std::max(classes.age_first, start) >= std::min(classes.age_last, end)) return false;
  }
  return true;
}

std::vector<Face> filter_faces(std::vector<Face> faces, const std::vector<FaceClasses>& classes,
                               const FaceFilter& filter) {
  FSWAP_CHECK(faces.size() == classes.size(), "one FaceClasses per face");
  std::vector<Face> kept;
  for (std::size_t i = 0; i < faces.size(); ++i)
    if (face_passes(classes[i], filter)) kept.push_back(std::move(faces[i]));
  return kept;
}

std::vector<int> face_order(const std::vector<Face>& faces, FaceOrder order) {
  std::vector<int> index(faces.size());
  std::iota(index.begin(), index.end(), 0);
  auto by = [&](auto key, bool descending) {
    std::stable_sort(index.begin(), index.end(), [&](int a, int b) {
      return descending ? key(faces[a]) > key(faces[b]) : key(faces[a]) < key(faces[b]);
    });
  };
  const auto left = [](const Face& f) { return f.box.x1; };
  const auto top = [](const Face& f) { return f.box.y1; };
  const auto area = [](const Face& f) { return f.box.area(); };
  const auto score = [](const Face& f) { return f.score; };
  switch (order) {
    case FaceOrder::kLeftRight: by(left, false); break;
    case FaceOrder::kRightLeft: by(left, true); break;
    case FaceOrder::kTopBottom: by(top, false); break;
    case FaceOrder::kBottomTop: by(top, true); break;
    case FaceOrder::kSmallLarge: by(area, false); break;
    case FaceOrder::kLargeSmall: by(area, true); break;
    case FaceOrder::kBestWorst: by(score, true); break;
    case FaceOrder::kWorstBest: by(score, false); break;
  }
  return index;
}

std::vector<Face> sort_faces(std::vector<Face> faces, FaceOrder order) {
  std::vector<Face> sorted;
  sorted.reserve(faces.size());
  for (int i : face_order(faces, order)) sorted.push_back(std::move(faces[static_cast<std::size_t>(i)]));
  return sorted;
}

int reference_face(const std::vector<Face>& faces, const SelectorOptions& options) {
  const std::vector<int> order = face_order(faces, options.order);
  if (order.empty()) return -1;
  return order[std::min<std::size_t>(static_cast<std::size_t>(std::max(options.reference_position, 0)), order.size() - 1)];
}

std::vector<Face> select_faces(std::vector<Face> faces, const SelectorOptions& options) {
  FSWAP_CHECK(options.mode != SelectorMode::kReference, "reference mode goes through ReferenceTracker");
  faces = sort_faces(std::move(faces), options.order);
  if (options.mode == SelectorMode::kOne && faces.size() > 1) faces.resize(1);
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

int largest_face(const std::vector<Face>& faces) {
  int largest = -1;
  for (std::size_t i = 0; i < faces.size(); ++i)
    if (largest < 0 || faces[i].box.area() > faces[largest].box.area()) largest = static_cast<int>(i);
  return largest;
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
