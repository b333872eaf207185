// FaceFusion's face_enhancer (reference/facefusion.md §1.2 and §2.6): restores each chosen face
// with one of FaceFusion's enhancer models, then blends the result with the frame.
//
//   FSWAP_ASSIGN_OR_RETURN(auto model, FaceEnhancerModel::load(engine, models_dir, "gfpgan_1.4", {}));
//   FaceEnhancer enhancer(std::move(model), {/*blend=*/80, /*weight=*/0.5f, /*face_mask_blur=*/0.3f});
//   FSWAP_RETURN_IF_ERROR(enhancer.enhance(frame, face, &ledger));   // in place
//
// Per face: crop (the model's template and size), input (v/255 − 0.5)/0.5 RGB NCHW (+ `weight`
// when the model has that input), run, output clip(−1, 1) → round((v + 1)/2 · 255), box mask
// (face_mask_blur, no padding) — with --face-mask-types occlusion, its minimum with the occlusion
// mask of the crop (face/face_masker.h) — paste_back, then frame·(1 − b) + pasted·b with b = blend/100,
// rounded as cv2.addWeighted does. Our frames are RGB, so FaceFusion's BGR flips cancel out.
// A FaceEnhancer is used from one thread at a time (one InferenceSession). Records "enhance"
// (crop + model) and "blend" (mask, paste, blend) in the ledger when given one.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "core/time_ledger.h"
#include "face/device_face.h"
#include "face/face.h"
#include "face/face_masker.h"
#include "face/face_templates.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

// One of FaceFusion's enhancer models: its file (<name>.onnx in --models-dir), the template
// its crop is aligned to, and the crop size in pixels.
struct FaceEnhancerModelInfo {
  std::string name;
  const std::array<Point2f, 5>* face_template = nullptr;  // kFaceFusionFfhq512 or kFaceFusionArcface128
  int size = 512;
};

// codeformer, gfpgan_1.2, gfpgan_1.3, gfpgan_1.4, gpen_bfr_256, gpen_bfr_512, gpen_bfr_1024,
// gpen_bfr_2048, restoreformer_plus_plus.
const std::vector<std::string>& face_enhancer_model_names();
// The model's template and size; kInvalidInput for a name not in face_enhancer_model_names().
Result<FaceEnhancerModelInfo> face_enhancer_model_info(const std::string& name);

// The frame → crop transform: least-squares similarity of the landmarks onto template × size.
Affine face_enhancer_affine(const std::array<Point2f, 5>& landmarks5, const FaceEnhancerModelInfo& info);

// The size × size crop through face_enhancer_affine: bilinear warp, replicated borders.
// frame_to_crop (optional) receives the transform.
Image face_enhancer_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, const FaceEnhancerModelInfo& info,
                         Affine* frame_to_crop = nullptr);

// [1,3,H,W] float32, value (v/255 − 0.5)/0.5, planes R, G, B.
Tensor face_enhancer_input_tensor(const Image& rgb_crop);

// Model output [1,3,H,W] (RGB planes) → H×W×3 RGB crop: round((clip(v, −1, 1) + 1)/2 · 255),
// halves to even as numpy's round. Float values 0..255, all integers (FaceFusion's uint8 crop).
ImageF face_enhancer_output_to_crop(const Tensor& output);

// frame = round(frame·(1 − b) + pasted·b) with b = blend/100 (blend 0..100), over `region`
// (clipped to the frame) only; as cv2.addWeighted on uint8 (float arithmetic, round half to
// even, saturate). frame and pasted: same size and channels.
void face_enhancer_blend(Image& frame, const Image& pasted, float blend, const Rect& region);

class FaceEnhancerModel {
 public:
  // Loads models_dir/<name>.onnx. Errors: an unknown name kInvalidInput; a missing file
  // kNotFound naming it; the engine's; an input contract other than `input` [1,3,S,S] (+ an
  // optional one-value `weight`, float32 or float64) and an output [1,3,S,S], S the model's size
  // (dynamic dimensions accepted), is kInvalidInput naming the file.
  static Result<std::unique_ptr<FaceEnhancerModel>> load(Engine& engine, const std::string& models_dir,
                                                         const std::string& name, const SessionOptions& options);
  // As above, from an explicit path, with the template and size of `info`.
  static Result<std::unique_ptr<FaceEnhancerModel>> load_file(Engine& engine, const std::string& model_path,
                                                              const FaceEnhancerModelInfo& info,
                                                              const SessionOptions& options);

  const FaceEnhancerModelInfo& info() const { return info_; }
  bool has_weight_input() const { return weight_index_ >= 0; }

  // One run on an aligned size × size RGB crop. weight (0..1) is fed only when the model has a
  // `weight` input. Returns the restored crop, RGB, 0..255 float (integers).
  Result<ImageF> run(const Image& rgb_crop, float weight);

  // The GPU the model runs on when a crop can stay there (the native engine on CUDA:
  // face/device_face.h); null otherwise.
  DeviceWork* device_work() const { return device_face_built() ? session_->device_work() : nullptr; }
  // run() on the GPU: the crop of `frame` through frame_to_crop, the model, the restored crop
  // (size² · 3 floats, HWC, 0..255 integers, as run() gives) into `restored`. The caller holds
  // the GPU.
  Status run_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, float weight, const DeviceBuffer& restored);

 private:
  FaceEnhancerModel() = default;
  std::unique_ptr<InferenceSession> session_;
  FaceEnhancerModelInfo info_;
  int input_index_ = 0, weight_index_ = -1;  // positions in session_->inputs()
  DType weight_dtype_ = DType::kFloat64;
};

struct FaceEnhancerOptions {
  float blend = 80;             // --face-enhancer-blend 0..100 (FaceFusion's default 80)
  float weight = 0.5f;          // --face-enhancer-weight 0..1 (default 0.5), models with `weight` only
  float face_mask_blur = 0.3f;  // --face-mask-blur 0..1 (the box mask; no padding)
};

class FaceEnhancer {
 public:
  // occluder: FaceFusion's occlusion mask (--face-mask-types occlusion), or null for the box alone.
  FaceEnhancer(std::unique_ptr<FaceEnhancerModel> model, const FaceEnhancerOptions& options,
               std::shared_ptr<FaceOccluder> occluder = nullptr);
  // Enhances `target` (which must have landmarks) in the RGB frame, in place.
  Status enhance(Image& frame, const Face& target, TimeLedger* ledger);
  // The GPU on which it can work on a frame kept there (the model, and the occluder when given,
  // run there); null when it needs the frame on the host.
  DeviceWork* device_work() const;
  // enhance() on a frame on device_work()'s GPU, the caller holding it. The box mask is uploaded
  // once; the occlusion mask is made per face there (FaceOccluder::mask_on_device).
  Status enhance_on_device(const DeviceFrame& frame, const Face& target, TimeLedger* ledger);
  // Frees the box mask the device path keeps on the GPU (a face goes to the host path because its
  // region did not fit). Not while holding device_work().
  void release_device_buffers() { box_mask_on_gpu_ = KeptBuffer(); }
  // The part of a frame_width × frame_height frame that enhance() and enhance_on_device() read
  // and write for `target`: crop_step_rect (face/paste_back.h) of its crop. The whole frame for a
  // face without landmarks (the steps refuse it).
  Rect device_region(const Face& target, int frame_width, int frame_height) const;

 private:
  std::unique_ptr<FaceEnhancerModel> model_;
  FaceEnhancerOptions options_;
  std::shared_ptr<FaceOccluder> occluder_;
  ImageF box_mask_;  // depends only on the crop size
  Image pasted_;     // scratch: the frame with the restored face pasted back (inside its rectangle)
  KeptBuffer box_mask_on_gpu_;  // the device path's, uploaded on first use
};

}  // namespace fswap
