// FaceFusion's inswapper_128 (InsightFace; reference/facefusion.md §2.4), with FaceFusion's
// exact pre- and post-processing:
//   source: latent = embedding · emap / ‖embedding‖ — the *raw* arcface embedding, emap the
//           file's last initializer [512,512]; no re-normalisation after emap (insightface's own
//           inswapper.py differs: it uses the normed embedding and re-normalises the latent);
//   target: the frame warped onto arcface_128 × 128, RGB/255 (mean 0, std 1), NCHW;
//   output: [1,3,128,128] RGB, clip(0,1) · 255, kept as float (FaceFusion pastes the float crop).
//
//   FSWAP_ASSIGN_OR_RETURN(auto model, InswapperModel::load(engine, dir + "/inswapper_128.onnx", {}));
//   std::vector<float> latent = inswapper_source_latent(arcface.embedding, model->emap());
//   Affine frame_to_crop;
//   Image crop = inswapper_crop(frame, face.landmarks5, &frame_to_crop);
//   FSWAP_ASSIGN_OR_RETURN(ImageF swapped, model->run(crop, latent));
//
// InswapperModel::run is used from one thread at a time (one InferenceSession).
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

// FaceFusion's arcface_128 template (unit square; × crop size): insightface's arcface_dst
// shifted +8 px at 128 (norm_crop2).
extern const std::array<Point2f, 5> kFaceFusionArcface128;

inline constexpr int kInswapperCropSize = 128;
inline constexpr int kInswapperEmbeddingSize = 512;

// The last initializer of an ONNX file, in file order (GraphProto.initializer[-1], what
// FaceFusion's get_static_model_initializer reads), as float32 row-major. load_onnx keeps
// Graph::weights in the file's initializer order, so this is Graph::weights.back(). float16 is
// widened. Errors: load_onnx's; no initializers or another dtype kInvalidInput.
Result<Tensor> read_last_initializer(const std::string& model_path);

// FaceFusion's inswapper source: latent[i] = Σ_j embedding[j] · emap[j·512 + i] / ‖embedding‖₂.
// embedding: the raw arcface_w600k_r50 output (512); emap: [512,512] row-major.
std::vector<float> inswapper_source_latent(const std::vector<float>& raw_embedding, const std::vector<float>& emap);

// The 128×128 target crop: least-squares similarity of the landmarks onto kFaceFusionArcface128
// × 128, bilinear warp, replicated borders. frame_to_crop (optional) receives the transform.
Image inswapper_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, Affine* frame_to_crop = nullptr);

// [1,3,128,128] float32, value v/255, planes R, G, B. (FaceFusion: BGR crop [:, :, ::-1] / 255,
// minus mean 0, over std 1.)
Tensor inswapper_target_tensor(const Image& rgb_crop);

// Model output [1,3,H,W] (RGB planes) → H×W×3 RGB crop, clip(v, 0, 1) · 255, float. (FaceFusion
// then flips to BGR for its BGR frames; our frames are RGB, so no flip.)
ImageF inswapper_output_to_crop(const Tensor& output);

class InswapperModel {
 public:
  // Loads the session and reads emap from the same file. Errors: the engine's; an input contract
  // other than target [1,3,128,128] + source [1,512] (any order) or an emap that is not
  // [512,512] is kInvalidInput naming the file.
  static Result<std::unique_ptr<InswapperModel>> load(Engine& engine, const std::string& model_path,
                                                      const SessionOptions& options);

  const std::vector<float>& emap() const { return emap_; }  // [512,512] row-major

  // One swap of an aligned 128×128 RGB crop to the identity `source_latent` (512, from
  // inswapper_source_latent). Returns the swapped crop, RGB, 0..255 float.
  Result<ImageF> run(const Image& rgb_crop, const std::vector<float>& source_latent);

 private:
  InswapperModel() = default;
  std::unique_ptr<InferenceSession> session_;
  int target_index_ = 0, source_index_ = 1;  // positions in session_->inputs()
  std::vector<float> emap_;
};

}  // namespace fswap
