// FaceFusion's face masks (face_masker.py; reference/facefusion.md §2.5) for a swapped crop:
//   box        create_box_mask (face/paste_back.h): zero bands, OpenCV Gaussian blur;
//   occlusion  xseg_1/2/3 (many = their minimum) on the target crop: resized to 256 (bilinear),
//              BGR v/255 NHWC in, output [0][0] clip(0, 1), resized back, soft threshold;
//   area       convex hull of 68-landmark index sets (upper-face, lower-face, mouth) in crop
//              coordinates, truncated to integers, filled with 1, soft threshold;
//   region     bisenet_resnet_18/34 on the swapped crop: resized to 512, RGB (v/255 − ImageNet
//              mean)/std NCHW in, argmax over classes ∈ the chosen regions, resized back, soft
//              threshold;
//   soft threshold: (GaussianBlur(clip(m, 0, 1), σ 5).clip(0.5, 1) − 0.5) · 2.
// Box and occlusion look at the target crop before the swap, area and region at the swapped crop
// after it; the crop mask is the minimum of all chosen masks, clipped to [0, 1].
//
//   FaceMaskOptions o;  o.types = {"box", "occlusion", "region"};
//   FSWAP_ASSIGN_OR_RETURN(FaceMasker masker, FaceMasker::load(engine, models_dir, o, {}));
//   FSWAP_ASSIGN_OR_RETURN(ImageF mask, masker.before_swap(target_crop));
//   ... swap ...
//   FSWAP_RETURN_IF_ERROR(masker.after_swap(swapped_crop, landmarks68_in_crop, mask));
//
// A FaceMasker is used from one thread at a time (its occluder and parser sessions).
//
// On a frame kept on the GPU (face/device_face.h, face/device_masks.h) the same masks come from
// before_swap_on_device / after_swap_on_device when runs_on(gpu): the occluder and the parser run
// there, the area mask is drawn on the host and uploaded. A masker that did keeps its box mask on
// that GPU (a KeptBuffer): never destroy it while holding the GPU.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "face/device_face.h"
#include "face/paste_back.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

struct FaceMaskOptions {
  std::vector<std::string> types = {"box"};  // --face-mask-types: box, occlusion, area, region
  float blur = 0.3f;                         // --face-mask-blur 0..1 (the box mask)
  FaceMaskPadding padding{};                 // --face-mask-padding top right bottom left, %
  // --face-mask-areas: upper-face, lower-face, mouth (default all)
  std::vector<std::string> areas = {"upper-face", "lower-face", "mouth"};
  // --face-mask-regions: skin, left-eyebrow, right-eyebrow, left-eye, right-eye, glasses, nose,
  // mouth, upper-lip, lower-lip (default all)
  std::vector<std::string> regions = {"skin", "left-eyebrow", "right-eyebrow", "left-eye", "right-eye",
                                      "glasses", "nose", "mouth", "upper-lip", "lower-lip"};
  std::string occluder_model = "xseg_1";        // --face-occluder-model: xseg_1, xseg_2, xseg_3, many
  std::string parser_model = "bisenet_resnet_34";  // --face-parser-model: bisenet_resnet_18, bisenet_resnet_34
};

// Checks names (types, areas, regions, models) without loading anything; kInvalidInput naming
// the bad value and the choices.
Status validate_face_mask_options(const FaceMaskOptions& options);

// The 68-landmark indices of an area (FaceFusion's face_mask_area_set); kInvalidInput for an
// unknown name.
Result<std::vector<int>> face_mask_area_points(const std::string& area);
// The face parser's class id of a region (FaceFusion's face_mask_region_set); kInvalidInput for
// an unknown name.
Result<int> face_mask_region_id(const std::string& region);

// In place: (GaussianBlur(clip(m, 0, 1), σ 5).clip(0.5, 1) − 0.5) · 2, OpenCV's float Gaussian.
void soft_threshold_mask(ImageF& mask);

// The area mask of a width × height crop: the convex hull of the points (cast to int32 by
// truncation, as numpy's astype) filled with 1 as cv2.fillConvexPoly does (8-connected edges
// drawn, each row filled between its rounded edge crossings), then soft_threshold_mask.
ImageF create_area_mask(int width, int height, const std::vector<Point2f>& points);

// cv2.resize(uint8 image, (width, height)) with INTER_LINEAR, in OpenCV's 8-bit fixed point:
// half-pixel centres, 11-bit weights, rows to 2048× integers, columns scaled down by 2⁴ and 2¹⁶
// and rounded (OpenCV's vectorised path). Equal to cv::resize when shrinking or at the same size;
// when enlarging, ~0.2% of values are one level off (measured in test_facefusion_masks).
Image resize_linear_opencv(const Image& src, int width, int height);

class FaceOccluder {
 public:
  // models_dir/<name>.onnx (many: xseg_1, xseg_2 and xseg_3). Missing file kNotFound naming it;
  // a model that does not take `input` [1,256,256,3] and give 256×256 values kInvalidInput.
  static Result<std::unique_ptr<FaceOccluder>> load(Engine& engine, const std::string& models_dir,
                                                    const std::string& name, const SessionOptions& options);
  // The soft-thresholded occlusion mask of an RGB crop, crop-sized, 1 channel.
  Result<ImageF> mask(const Image& rgb_crop);

  // The GPU all its models run on with device tensors (InferenceSession::device_work), or null.
  DeviceWork* device_work() const;
  // mask() of the frame's size × size crop through frame_to_crop (bilinear, replicated borders:
  // the swapper's and the enhancer's crop) on the frame's GPU, into `mask` (size² floats). The
  // caller holds the GPU; kUnsupported unless device_work() is the frame's GPU.
  Status mask_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, int size, const DeviceBuffer& mask);

 private:
  FaceOccluder() = default;
  std::vector<std::unique_ptr<InferenceSession>> sessions_;
};

class FaceParser {
 public:
  // models_dir/<name>.onnx. Missing file kNotFound; a model that does not take `input`
  // [1,3,512,512] and give [1,C,512,512] kInvalidInput.
  static Result<std::unique_ptr<FaceParser>> load(Engine& engine, const std::string& models_dir,
                                                  const std::string& name, const SessionOptions& options);
  // The soft-thresholded region mask of a crop (RGB, 0..255 float, e.g. the swapped crop):
  // 1 where the parser's most likely class is one of region_ids.
  Result<ImageF> region_mask(const ImageF& rgb_crop, const std::vector<int>& region_ids);

  // The GPU its model runs on with device tensors (InferenceSession::device_work), or null.
  DeviceWork* device_work() const;
  // region_mask() on the GPU: rgb_crop size² · 3 floats (HWC, 0..255), the result into `mask`
  // (size² floats). The caller holds the GPU; kUnsupported unless device_work() is `gpu`.
  Status region_mask_on_device(DeviceWork& gpu, const DeviceBuffer& rgb_crop, int size,
                               const std::vector<int>& region_ids, const DeviceBuffer& mask);

 private:
  FaceParser() = default;
  std::unique_ptr<InferenceSession> session_;
  std::string name_;
};

// A default-constructed FaceMasker gives FaceFusion's default: the box mask alone (blur 0.3, no
// padding).
class FaceMasker {
 public:
  // Validates the options and loads the occluder (types has occlusion) and the parser (region).
  static Result<FaceMasker> load(Engine& engine, const std::string& models_dir, const FaceMaskOptions& options,
                                 const SessionOptions& session_options);

  const FaceMaskOptions& options() const { return options_; }
  bool uses(const std::string& type) const;

  // The minimum of the box and occlusion masks of the (square) target crop; all ones when
  // neither is chosen. The box mask is cached per crop size.
  Result<ImageF> before_swap(const Image& target_crop);
  // Whether the mask depends on the crop's size alone (box, or no type), not on its content or
  // landmarks (occlusion, area, region).
  bool mask_is_fixed() const { return !occluder_ && !parser_ && !uses("area"); }
  // That mask for a size × size crop: what before_swap gives and after_swap leaves; nullopt
  // unless mask_is_fixed().
  std::optional<ImageF> fixed_mask(int size);
  // mask = min(mask, area mask, region mask) of the swapped crop, clipped to [0, 1].
  // landmarks68: the target's 68 landmarks in crop coordinates (used by the area mask).
  Status after_swap(const ImageF& swapped_crop, const std::array<Point2f, 68>& landmarks68, ImageF& mask);

  // Whether the device twins below can work on `gpu`: this build has the kernels and the occluder
  // and the parser (those chosen) run there.
  bool runs_on(const DeviceWork& gpu) const;
  // before_swap on a frame kept on the GPU: the mask (size² floats, new) of the frame's size × size
  // crop through frame_to_crop. The box mask is uploaded once per masker (for the first size).
  // The caller holds the frame's GPU; kUnsupported unless runs_on(it).
  Result<DeviceBuffer> before_swap_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, int size);
  // after_swap on the GPU: swapped_crop size² · 3 floats (HWC, 0..255), mask from
  // before_swap_on_device. The area mask is drawn on the host and uploaded. The caller holds `gpu`.
  Status after_swap_on_device(DeviceWork& gpu, const DeviceBuffer& swapped_crop, int size,
                              const std::array<Point2f, 68>& landmarks68, const DeviceBuffer& mask);

 private:
  FaceMaskOptions options_;
  std::shared_ptr<FaceOccluder> occluder_;
  std::shared_ptr<FaceParser> parser_;
  std::vector<int> area_points_, region_ids_;
  ImageF box_mask_;
  KeptBuffer box_mask_on_gpu_;  // the box mask of box_mask_on_gpu_size_, for the device path
  int box_mask_on_gpu_size_ = 0;

  // The box mask of a width × height crop (cached per size), or all ones without "box".
  ImageF box_or_ones(int width, int height);
  // The area mask of a width × height crop of a face with these landmarks (crop coordinates).
  ImageF area_mask(int width, int height, const std::array<Point2f, 68>& landmarks68) const;
};

}  // namespace fswap
