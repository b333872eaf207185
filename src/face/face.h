// Face: what the analysis stages know about one face in one image.
//
//   detector fills box, score and (when the model has them) keypoints;
//   the landmarker fills landmarks68 and landmarks5; the recognizer fills embedding;
//   on video, FaceTracker (face/face_tracker.h) fills track_id.
#pragma once

#include <array>
#include <vector>

#include "imaging/geometry.h"

namespace fswap {

// Axis-aligned box in image pixels, x1 < x2, y1 < y2.
struct FaceBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return width() > 0 && height() > 0 ? width() * height() : 0.f; }
  Point2f centre() const { return {(x1 + x2) / 2, (y1 + y2) / 2}; }
  bool operator==(const FaceBox&) const = default;
};

// Intersection over union of two boxes (0 when either is empty).
float iou(const FaceBox& a, const FaceBox& b);

// Indices into the 68-point (iBUG 300-W) scheme.
namespace lmk68 {
constexpr int kJawFirst = 0, kJawLast = 16;
constexpr int kNoseTip = 30;
constexpr int kLeftEyeFirst = 36, kRightEyeFirst = 42;  // six points each
constexpr int kMouthOuterFirst = 48, kMouthOuterLast = 59;
constexpr int kMouthInnerFirst = 60, kMouthInnerLast = 67;
}  // namespace lmk68

struct Face {
  FaceBox box;
  float score = 0;                      // detector confidence 0..1
  std::vector<Point2f> keypoints;       // detector keypoints (BlazeFace: 6), may be empty
  bool has_landmarks = false;
  std::array<Point2f, 68> landmarks68;  // image pixels
  std::array<Point2f, 5> landmarks5;    // eyes, nose tip, mouth corners (from the 68)
  std::vector<float> embedding;         // L2-normalised identity vector, empty until embedded
  int track_id = -1;                    // video: FaceTracker's identity over frames; -1 untracked
};

// The face in coordinates shifted by (dx, dy): box, keypoints and landmarks moved, the rest kept
// (a face step on a sub-rectangle of its frame at (x, y) takes translated(face, −x, −y)).
Face translated(const Face& face, float dx, float dy);

// The five alignment points from 68 landmarks: eye centres, nose tip, mouth corners.
std::array<Point2f, 5> landmarks5_from_68(const std::array<Point2f, 68>& landmarks);

// Cosine similarity of two L2-normalised embeddings (dot product), in [-1, 1].
float embedding_similarity(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace fswap
