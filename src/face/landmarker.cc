#include "face/landmarker.h"

#include "face/model_input.h"
#include "imaging/filter.h"
#include "imaging/transform.h"

namespace fswap {

namespace {
constexpr int kCrop = 64;
}

Result<std::unique_ptr<FaceLandmarker>> FaceLandmarker::load(Engine& engine, const std::string& models_dir,
                                                             const SessionOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(auto session, engine.load(models_dir + "/fr_landmark.onnx", options));
  return std::unique_ptr<FaceLandmarker>(new FaceLandmarker(std::move(session)));
}

Status FaceLandmarker::landmark(const Image& rgb, Face& face) {
  const FaceBox& b = face.box;
  if (b.width() < 2 || b.height() < 2) return invalid_input("face box too small for landmarks");
  // The box maps onto the 64×64 crop; model outputs are fractions of the box.
  const double sx = kCrop / static_cast<double>(b.width()), sy = kCrop / static_cast<double>(b.height());
  const Affine to_crop{sx, 0, -b.x1 * sx, 0, sy, -b.y1 * sy};
  Image crop = rgb_to_gray(warp_affine(rgb, to_crop, kCrop, kCrop, Border::kReplicate));
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({image_to_nchw(crop, 0.f, 1.f / 256.f)}));
  const float* p = outputs.at(0).data<float>();
  for (int i = 0; i < 68; ++i)
    face.landmarks68[i] = {b.x1 + p[2 * i] * b.width(), b.y1 + p[2 * i + 1] * b.height()};
  face.landmarks5 = landmarks5_from_68(face.landmarks68);
  face.has_landmarks = true;
  return Status::ok();
}

}  // namespace fswap
