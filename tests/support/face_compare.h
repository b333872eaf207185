// Comparing detections of two engines in tests: the first face of `a` (the detector's best) against
// the face of `b` that overlaps it most (scores of equal faces may tie, so their order may differ).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "face/face.h"

namespace fswap::test {

inline void expect_same_best_face(const std::vector<Face>& a, const std::vector<Face>& b, float score_tolerance,
                                  float pixel_tolerance) {
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  const Face& x = a.front();
  const Face& y = *std::max_element(b.begin(), b.end(), [&](const Face& p, const Face& q) {
    return iou(x.box, p.box) < iou(x.box, q.box);
  });
  EXPECT_NEAR(x.score, y.score, score_tolerance);
  EXPECT_NEAR(x.box.x1, y.box.x1, pixel_tolerance);
  EXPECT_NEAR(x.box.y1, y.box.y1, pixel_tolerance);
  EXPECT_NEAR(x.box.x2, y.box.x2, pixel_tolerance);
  EXPECT_NEAR(x.box.y2, y.box.y2, pixel_tolerance);
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(x.keypoints[k].x, y.keypoints[k].x, pixel_tolerance);
    EXPECT_NEAR(x.keypoints[k].y, y.keypoints[k].y, pixel_tolerance);
  }
}

}  // namespace fswap::test
