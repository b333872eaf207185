#include "face/recognizer_arcface.h"

#include <cmath>

#include "face/model_input.h"
#include "face/recognizer.h"
#include "imaging/transform.h"

namespace fswap {

const std::array<Point2f, 5> kFaceFusionArcface112V2 = {{{0.34191607f, 0.46157411f},
                                                        {0.65653393f, 0.45983393f},
                                                        {0.50022500f, 0.64050536f},
                                                        {0.37097589f, 0.82469196f},
                                                        {0.63151696f, 0.82325089f}}};

Tensor arcface_input_tensor(const Image& rgb_crop) {
  // (v − 127.5) · (1/127.5) == v/127.5 − 1.
  return image_to_nchw(rgb_crop, 127.5f, 1.f / 127.5f);
}

Image arcface_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, Affine* frame_to_crop) {
  // FaceFusion: estimateAffinePartial2D(RANSAC, threshold 100) — with five landmarks every point
  // is an inlier, so it is the least-squares similarity. Its INTER_AREA flag is not supported by
  // cv2.warpAffine, which falls back to bilinear.
  const Affine m = align_to_template(landmarks5, kFaceFusionArcface112V2, static_cast<float>(kArcfaceCropSize));
  if (frame_to_crop) *frame_to_crop = m;
  return warp_affine(rgb, m, kArcfaceCropSize, kArcfaceCropSize, Border::kReplicate);
}

Result<std::unique_ptr<ArcfaceRecognizer>> ArcfaceRecognizer::load(Engine& engine, const std::string& model_path,
                                                                   const SessionOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(auto session, engine.load(model_path, options));
  const auto& in = session->inputs();
  const auto& out = session->outputs();
  const auto dim_ok = [](std::int64_t d, std::int64_t want) { return d == want || d == -1; };
  if (in.size() != 1 || in[0].dtype != DType::kFloat32 || in[0].shape.size() != 4 || !dim_ok(in[0].shape[0], 1) ||
      in[0].shape[1] != 3 || in[0].shape[2] != kArcfaceCropSize || in[0].shape[3] != kArcfaceCropSize)
    return invalid_input(model_path + ": not an arcface_w600k_r50 model: expected one float input [1,3,112,112], got " +
                         (in.empty() ? std::string("none") : in[0].name + " " + shape_to_string(in[0].shape)));
  if (out.empty() || out[0].shape.empty() || out[0].shape.back() != 512)
    return invalid_input(model_path + ": not an arcface_w600k_r50 model: expected a [1,512] output");
  return std::unique_ptr<ArcfaceRecognizer>(new ArcfaceRecognizer(std::move(session)));
}

Result<ArcfaceEmbedding> ArcfaceRecognizer::embed(const Image& rgb, const std::array<Point2f, 5>& landmarks5) {
  const Image crop = arcface_crop(rgb, landmarks5);
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({arcface_input_tensor(crop)}));
  const Tensor& out = outputs.at(0);
  const float* v = out.data<float>();
  ArcfaceEmbedding e;
  e.embedding.assign(v, v + out.elements());
  double norm = 0;
  for (float x : e.embedding) norm += double(x) * x;
  norm = std::sqrt(norm);
  e.normed_embedding = e.embedding;
  if (norm > 0)
    for (float& x : e.normed_embedding) x = static_cast<float>(x / norm);
  return e;
}

}  // namespace fswap
