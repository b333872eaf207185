// Face recognizer (fr_feature): the face aligned to the ArcFace 112×112 five-point template,
// (v − 127) / 128 RGB, in; a 512-d identity embedding out, L2-normalised.
//
//   FSWAP_ASSIGN_OR_RETURN(auto rec, FaceRecognizer::load(engine, models_dir, opts));
//   FSWAP_RETURN_IF_ERROR(rec->embed(frame, face));   // needs face.landmarks5
//
// Used from one thread at a time.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "core/status.h"
#include "face/face.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

// The ArcFace 112×112 template (insightface's arcface_dst; FaceFusion's arcface_112_v2 × 112).
extern const std::array<Point2f, 5> kArcface112Template;

// Least-squares similarity from the face's five points onto the template scaled to `size`.
Affine align_to_template(const std::array<Point2f, 5>& points, const std::array<Point2f, 5>& template_points,
                         float scale = 1.f);

class FaceRecognizer {
 public:
  static Result<std::unique_ptr<FaceRecognizer>> load(Engine& engine, const std::string& models_dir,
                                                      const SessionOptions& options);
  Status embed(const Image& rgb, Face& face);

 private:
  explicit FaceRecognizer(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace fswap
