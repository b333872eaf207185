// FaceFusion's content masks (face/face_masker.h) for a frame kept on the GPU (face/device_face.h):
// the occluder's and the parser's inputs built from crops in device memory, their outputs turned
// into crop masks there (clip, resize back, soft threshold), and the masks' minimum. The area mask
// is drawn on the host (create_area_mask: landmarks only, no pixels) and uploaded (upload_mask).
// FaceOccluder::mask_on_device, FaceParser::region_mask_on_device and FaceMasker's
// before_swap_on_device / after_swap_on_device put these steps together.
//
//   auto held = gpu.hold();
//   FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, occluder_input(frame, frame_to_crop, 128, 256));
//   FSWAP_ASSIGN_OR_RETURN(DeviceBuffer occlusion, mask_filled(gpu, 256, 1.f));
//   ... xseg.run_on_device(input) → mask_minimum(gpu, occlusion, output, 256) ...
//   FSWAP_RETURN_IF_ERROR(model_mask_to_crop(gpu, occlusion, 256, 128, mask));
//   FSWAP_RETURN_IF_ERROR(mask_minimum(gpu, mask, static_cast<const float*>(box.data()), 128));
//
// A mask of size is size × size floats in device memory, row-major (the layout of a 1-channel
// ImageF); crops are square. Every call needs the GPU's hold() and enqueues on its stream.
// Agreement with the host (face_masker.h), step by step: the crop's warp, the occluder's resize
// (resize_linear_opencv's fixed point) and both inputs' packing, the argmax, the minimum, the
// clips and the soft threshold's blur (OpenCV's taps, double sums) are bit-identical; the float
// bilinear resizes are imaging/transform.h's within float rounding, and the parser's input
// multiplies by 1/255 and 1/std where the host divides (a float rounding apart). With the same
// model outputs a mask so equals the host's to ~1e-6. Builds without CUDA: every call is
// kUnsupported.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "face/device_face.h"
#include "imaging/geometry.h"
#include "imaging/image.h"

namespace fswap {

// The parser classes of region_ids as bits (bit k: class k) for cuda_imaging::chosen_class_mask;
// kInvalidInput naming an id outside 0..63.
Result<std::uint64_t> chosen_classes(const std::vector<int>& region_ids);

// A new mask of size, every value `value`.
Result<DeviceBuffer> mask_filled(DeviceWork& gpu, int size, float value);
// A host mask (1 channel, square) copied into a new device mask of its size.
Result<DeviceBuffer> upload_mask(DeviceWork& gpu, const ImageF& mask);
// mask = min(mask, other) per value (std::min(mask, other)); other: size² floats on the device.
Status mask_minimum(DeviceWork& gpu, const DeviceBuffer& mask, const float* other, int size);
// mask = clip(mask, 0, 1).
Status mask_clip(DeviceWork& gpu, const DeviceBuffer& mask, int size);
// face_masker.h's soft_threshold_mask in place: (GaussianBlur(clip(m, 0, 1), σ 5).clip(0.5, 1)
// − 0.5) · 2 with OpenCV's kernel (a size² scratch is allocated for the blur).
Status soft_threshold_on_device(DeviceWork& gpu, const DeviceBuffer& mask, int size);

// A model's mask of model_size (xseg's minimum, the parser's chosen classes) into `crop_mask` of
// crop_size: clipped to [0, 1] in place, resized (bilinear, transform.h's resize), soft threshold.
Status model_mask_to_crop(DeviceWork& gpu, const DeviceBuffer& model_mask, int model_size, const DeviceBuffer& crop_mask,
                          int crop_size);

// The occluder's input [1, model_size, model_size, 3] float32 (NHWC, BGR, v/255) from the frame's
// crop_size crop through frame_to_crop (bilinear, replicated borders: the swapper's and the
// enhancer's crop), resized to model_size as resize_linear_opencv.
Result<DeviceBuffer> occluder_input(const DeviceFrame& frame, const Affine& frame_to_crop, int crop_size, int model_size);
// The parser's input [1, 3, model_size, model_size] float32 ((v/255 − mean[c]) / stddev[c], RGB
// planes) from an RGB crop of crop_size (crop_size² · 3 floats 0..255, HWC: the swapped crop),
// resized to model_size (bilinear).
Result<DeviceBuffer> parser_input(DeviceWork& gpu, const DeviceBuffer& rgb_crop, int crop_size, int model_size,
                                  const std::array<float, 3>& mean, const std::array<float, 3>& stddev);
// The parser's scores [1, C, S, S] → `mask` of S: 1 where the most likely class is chosen.
// kInvalidInput when the scores are not float32 [1, C, S, S] of the mask's size.
Status chosen_class_mask(DeviceWork& gpu, const DeviceTensor& scores, std::uint64_t chosen, const DeviceBuffer& mask,
                         int size);

}  // namespace fswap
