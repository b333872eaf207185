// FaceFusion's 68-point landmarkers (face_landmarker.py; reference/facefusion.md §2.3):
//   2dfan4, peppa_wutz: the frame warped so the detector box's longer side spans 195 px, centred
//     in 256×256 (warp_face_by_translation: scale 195 / max(w, h), translation
//     (256 − (x1 + x2, y1 + y2)·scale) / 2, bilinear, zero borders); the crop then turned by the
//     face angle (create_rotated_matrix_and_size: getRotationMatrix2D about (128, 128), a second
//     bilinear warp with zero borders) and its contrast optimised (conditional_optimize_contrast:
//     CLAHE, clip 2, 8×8 tiles, on Lab's L when the mean 8-bit L is below 30); BGR v/255 NCHW in;
//     2dfan4: output 0 [1,68,≥2] → xy / 64 · 256, score = mean over points of output 1's
//       per-point heatmap maximum, mapped from [0, 0.9] to [0, 1];
//     peppa_wutz: output 0 (68·3 values) reshaped (68, 3) → xy / 64 · 256, score = mean of the
//       third column, mapped from [0, 0.95] to [0, 1];
//     points mapped back to the frame through the inverse turn, then the inverse warp.
//   fan_68_5: 68 points estimated from the five: the five mapped into the unit square by the
//     ffhq_512 similarity (estimate_matrix_by_face_landmark_5 at size 1), `input` [1,5,2] →
//     output [1,68,2], mapped back. Its 68/5 points give the face angle (estimate_face_angle).
// Not reproduced: FaceFusion passes every crop through OpenCV's uint8 RGB→Lab→RGB (the round trip
// moves values by a level or two); fswap converts only a crop that gets CLAHE, with float Lab
// (L quantised to 8 bits for the mean and CLAHE, a/b kept as floats).
//
//   FSWAP_ASSIGN_OR_RETURN(auto fan, FaceLandmarkEstimator::load(engine, dir, {}));
//   FSWAP_ASSIGN_OR_RETURN(auto estimated, fan->estimate(face.landmarks5));
//   FSWAP_ASSIGN_OR_RETURN(auto landmarker, FaceFusionLandmarker::load(engine, dir, "2dfan4", {}));
//   FSWAP_ASSIGN_OR_RETURN(FaceLandmarks68 lmk,
//                          landmarker->detect(frame, face.box, facefusion_face_angle(estimated)));
//
// Each is used from one thread at a time (one InferenceSession).
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "face/face.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

inline constexpr int kFaceFusionLandmarkerSize = 256;

struct FaceLandmarks68 {
  std::array<Point2f, 68> points;  // frame pixels
  float score = 0;                 // 0..1, FaceFusion's landmarker score; 0 when an output is not finite
};

// The frame → 256×256 crop transform of warp_face_by_translation for a detector box.
Affine facefusion_landmarker_transform(const FaceBox& box);

// FaceFusion's estimate_face_angle: the direction from point 0 to point 16 (the jaw's ends) of
// 68 points, in degrees 0..360 (image axes, y down), rounded to the nearest of 0, 90, 180, 270
// (the first of two equally near). 0: upright; 90: the face turned a quarter clockwise.
int facefusion_face_angle(const std::array<Point2f, 68>& points);

// The crop → turned crop transform for a face angle (0, 90, 180, 270): getRotationMatrix2D about
// (128, 128), counter-clockwise on screen, exact for quarter turns. As in FaceFusion it turns
// about (128, 128), not the crop's centre (127.5, 127.5): a turned crop moves by a pixel and
// gains a zero row or column.
Affine facefusion_landmarker_rotation(int angle);

// FaceFusion's conditional_optimize_contrast on a crop: when the mean of the 8-bit Lab L
// (L·255/100, rounded) is below 30, CLAHE (clip 2, 8×8 tiles) on it and back to RGB; else the crop
// unchanged. As FaceFusion, Lab is taken of the channels in BGR order read as RGB (it converts
// its BGR crop with COLOR_RGB2Lab).
Image facefusion_optimize_contrast(const Image& rgb_crop);

// The landmarker's 256×256 input crop: warped from the frame, turned by angle, contrast optimised.
// kInvalidInput for an angle other than 0, 90, 180, 270.
Result<Image> facefusion_landmarker_crop(const Image& rgb, const FaceBox& box, int angle);

// The crop's input tensor [1,3,256,256]: BGR v/255 (our crop is RGB; FaceFusion's BGR).
Tensor facefusion_landmarker_input(const Image& rgb_crop);

// FaceFusion's 5/68 points (convert_to_face_landmark_5): the eye centres (means of 36–41 and
// 42–47), the nose tip 30, the mouth corners 48 and 54.
std::array<Point2f, 5> facefusion_landmarks5_from_68(const std::array<Point2f, 68>& points);

// A face for FaceFusionLandmarker::detect: its frame, detector box and face angle
// (facefusion_face_angle of the 68/5 points, 0 for an upright face).
struct LandmarkTarget {
  const Image* rgb = nullptr;
  FaceBox box;
  int angle = 0;
};

class FaceFusionLandmarker {
 public:
  // models_dir/<name>.onnx, name 2dfan4 or peppa_wutz. Missing file kNotFound naming it; an
  // input other than one [1,3,256,256] float32, or outputs other than the model's (2dfan4: points
  // [1,68,≥2] and heatmaps [1,68,H,W]; peppa_wutz: 204 values), kInvalidInput naming the file.
  // The native engine loads it to take batches (SessionOptions::batch) where its graph allows.
  static Result<std::unique_ptr<FaceFusionLandmarker>> load(Engine& engine, const std::string& models_dir,
                                                            const std::string& name, const SessionOptions& options);
  Result<FaceLandmarks68> detect(const Image& rgb, const FaceBox& box, int angle);
  // Several faces (of one frame or of several) in runs of two when the model takes a batch, else
  // one run each; the landmarks in the targets' order.
  Result<std::vector<FaceLandmarks68>> detect(std::span<const LandmarkTarget> targets);
  bool takes_batches() const { return batched_; }

 private:
  FaceFusionLandmarker() = default;
  // One face's landmarks from item `item` of the outputs of a run of `items`.
  Result<FaceLandmarks68> decode(const std::vector<Tensor>& outputs, std::int64_t item, std::int64_t items,
                                 const LandmarkTarget& target) const;
  std::unique_ptr<InferenceSession> session_;
  std::string name_;
  bool batched_ = false;  // the session's input has a dynamic dim 0
};

class FaceLandmarkEstimator {
 public:
  // models_dir/fan_68_5.onnx. Missing file kNotFound; an input other than `input` [1,5,2] or an
  // output not of 136 values kInvalidInput naming the file.
  static Result<std::unique_ptr<FaceLandmarkEstimator>> load(Engine& engine, const std::string& models_dir,
                                                             const SessionOptions& options);
  // FaceFusion's 68/5 landmarks, frame pixels.
  Result<std::array<Point2f, 68>> estimate(const std::array<Point2f, 5>& landmarks5);

 private:
  FaceLandmarkEstimator() = default;
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace fswap
