#include "face/recognizer.h"

#include <cmath>
#include <vector>

#include "face/model_input.h"
#include "imaging/transform.h"

namespace fswap {

const std::array<Point2f, 5> kArcface112Template = {{{38.2946f, 51.6963f},
                                                     {73.5318f, 51.5014f},
                                                     {56.0252f, 71.7366f},
                                                     {41.5493f, 92.3655f},
                                                     {70.7299f, 92.2041f}}};

Affine align_to_template(const std::array<Point2f, 5>& points, const std::array<Point2f, 5>& template_points,
                         float scale) {
  std::vector<Point2f> from(points.begin(), points.end()), to;
  for (const auto& p : template_points) to.push_back({p.x * scale, p.y * scale});
  return estimate_similarity(from, to);
}

Result<std::unique_ptr<FaceRecognizer>> FaceRecognizer::load(Engine& engine, const std::string& models_dir,
                                                             const SessionOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(auto session, engine.load(models_dir + "/fr_feature.onnx", options));
  return std::unique_ptr<FaceRecognizer>(new FaceRecognizer(std::move(session)));
}

Status FaceRecognizer::embed(const Image& rgb, Face& face) {
  if (!face.has_landmarks) return internal_error("embed called on a face without landmarks");
  const Affine to_crop = align_to_template(face.landmarks5, kArcface112Template);
  Image crop = warp_affine(rgb, to_crop, 112, 112, Border::kConstant);
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({image_to_nchw(crop, 127.f, 1.f / 128.f)}));
  const Tensor& out = outputs.at(0);
  const float* v = out.data<float>();
  double norm = 0;
  for (std::int64_t i = 0; i < out.elements(); ++i) norm += double(v[i]) * v[i];
  norm = std::sqrt(norm);
  face.embedding.assign(v, v + out.elements());
  if (norm > 0)
    for (float& x : face.embedding) x = static_cast<float>(x / norm);
  return Status::ok();
}

}  // namespace fswap
