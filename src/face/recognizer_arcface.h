// FaceFusion's face recognizer arcface_w600k_r50 (InsightFace iresnet50, FaceFusion §2.3 step 4):
// the face warped onto the arcface_112_v2 template at 112×112, x/127.5 − 1 RGB NCHW in, a 512-d
// identity out, kept both raw and L2-normalised as FaceFusion does.
//
//   FSWAP_ASSIGN_OR_RETURN(auto arcface, ArcfaceRecognizer::load(engine, dir + "/arcface_w600k_r50.onnx", {}));
//   FSWAP_ASSIGN_OR_RETURN(ArcfaceEmbedding id, arcface->embed(frame, face.landmarks5));
//   // id.embedding feeds inswapper; id.normed_embedding is what Face::embedding holds elsewhere.
//
// Used from one thread at a time (one InferenceSession).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

// FaceFusion's arcface_112_v2 template (face_helper.py WARP_TEMPLATE_SET), unit square; multiply
// by the crop size. Points: left eye, right eye, nose tip, left and right mouth corners.
extern const std::array<Point2f, 5> kFaceFusionArcface112V2;

// Crop size of arcface_w600k_r50's input, in pixels.
inline constexpr int kArcfaceCropSize = 112;

struct ArcfaceEmbedding {
  std::vector<float> embedding;         // raw model output (1×512 flattened); FaceFusion's `embedding`
  std::vector<float> normed_embedding;  // embedding / ‖embedding‖₂; FaceFusion's `embedding_norm`
};

// The model input for an aligned 112×112 RGB crop: [1,3,112,112] float32, value v/127.5 − 1,
// planes R, G, B. (FaceFusion flips its BGR crop to RGB before this; ours already is RGB.)
Tensor arcface_input_tensor(const Image& rgb_crop);

// The aligned crop FaceFusion feeds arcface: least-squares similarity from the five landmarks
// onto kFaceFusionArcface112V2 × 112, bilinear warp with replicated borders. `frame_to_crop`
// (optional) receives the transform.
Image arcface_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, Affine* frame_to_crop = nullptr);

class ArcfaceRecognizer {
 public:
  // Errors: the engine's (missing file kNotFound, bad model kInvalidInput); a model that does not
  // take one [N|1,3,112,112] float input and give a [N|1,512]-sized output is kInvalidInput.
  static Result<std::unique_ptr<ArcfaceRecognizer>> load(Engine& engine, const std::string& model_path,
                                                         const SessionOptions& options);

  // Identity of the face whose five landmarks (image pixels) are given; rgb is the whole frame.
  Result<ArcfaceEmbedding> embed(const Image& rgb, const std::array<Point2f, 5>& landmarks5);

 private:
  explicit ArcfaceRecognizer(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace fswap
