#include "face/face.h"

#include <algorithm>

#include "core/status.h"

namespace fswap {

float iou(const FaceBox& a, const FaceBox& b) {
  const float ix = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float iy = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = ix * iy;
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

Face translated(const Face& face, float dx, float dy) {
  Face moved = face;
  const auto move = [&](Point2f& p) { p.x += dx, p.y += dy; };
  moved.box = {face.box.x1 + dx, face.box.y1 + dy, face.box.x2 + dx, face.box.y2 + dy};
  for (Point2f& p : moved.keypoints) move(p);
  for (Point2f& p : moved.landmarks68) move(p);
  for (Point2f& p : moved.landmarks5) move(p);
  return moved;
}

std::array<Point2f, 5> landmarks5_from_68(const std::array<Point2f, 68>& p) {
  auto mean = [&](std::initializer_list<int> idx) {
    Point2f m;
    for (int i : idx) {
      m.x += p[i].x;
      m.y += p[i].y;
    }
    m.x /= static_cast<float>(idx.size());
    m.y /= static_cast<float>(idx.size());
    return m;
  };
  return {mean({36, 37, 38, 39, 40, 41}), mean({42, 43, 44, 45, 46, 47}), p[lmk68::kNoseTip],
          mean({48, 60}), mean({54, 64})};
}

float embedding_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  FSWAP_CHECK(a.size() == b.size(), "embeddings of different sizes");
  float dot = 0;
  for (std::size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i];
  return dot;
}

}  // namespace fswap
