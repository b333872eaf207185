// CUDA twins of the CPU imaging functions (warp, resize, blur, blend) plus NV12 ↔ RGB, and the
// face models' tensor packing, FaceFusion's paste-back and its content masks' steps, so frames can
// stay on the GPU between pipeline stages. Each function checks its arguments, enqueues its kernels on `stream` and
// returns; none synchronises or allocates. The results equal the CPU functions' (transform.h,
// filter.h, blend.h) within one uint8 level or 1e-4 for floats, and the tensor packing is
// bit-identical to face/model_input.h's: the kernels evaluate the same formulas in the same order
// (no fused multiply-adds).
//
//   DeviceImage frame{d_frame, 1920, 1080, 3, pitch};       // device memory, pitch in bytes
//   DeviceImage crop{d_crop, 128, 128, 3, 128 * 3};
//   FSWAP_RETURN_IF_ERROR(cuda_imaging::warp_affine(frame, frame_to_crop, crop, Border::kReplicate, stream));
//   const ToPlanar to_model{.offset = {127.5f, 127.5f, 127.5f}, .scale = {1 / 127.5f, 1 / 127.5f, 1 / 127.5f}};
//   FSWAP_RETURN_IF_ERROR(cuda_imaging::planar_from_image(crop, to_model, d_input, stream));
//   ... the model turns d_input into d_output, [3, 128, 128] float32 ...
//   const FromPlanar from_model{.low = -1.f, .high = 1.f, .round = true};
//   FSWAP_RETURN_IF_ERROR(cuda_imaging::image_from_planar(d_output, from_model, face, stream));
//   const Rect region = paste_rect(1920, 1080, 128, 128, frame_to_crop);   // face/paste_back.h
//   FSWAP_RETURN_IF_ERROR(cuda_imaging::paste_back(frame, face, mask, frame_to_crop, region, 1.f, stream));
//
// The header needs no CUDA headers: a cudaStream_t is a CUstream_st*. Views do not own memory;
// the caller keeps it alive until the stream has run the work. Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "imaging/transform.h"

struct CUstream_st;

namespace fswap::cuda_imaging {

// An interleaved image in device memory: row y starts `pitch` bytes after row y − 1.
template <class T>
struct DeviceView {
  T* data = nullptr;
  int width = 0;
  int height = 0;
  int channels = 0;
  std::size_t pitch = 0;  // bytes, at least width · channels · sizeof(T)

  bool empty() const { return width <= 0 || height <= 0; }
};
using DeviceImage = DeviceView<std::uint8_t>;  // RGB (or any channel count) 0..255
using DeviceImageF = DeviceView<float>;        // masks and float images, same layout as ImageF

// NV12 in device memory: a full-size luma plane and an interleaved U,V plane of
// ceil(width / 2) pairs × ceil(height / 2) rows (odd sizes allowed: the last chroma sample
// covers a 1-pixel column or row).
struct Nv12View {
  std::uint8_t* y = nullptr;
  std::size_t y_pitch = 0;
  std::uint8_t* uv = nullptr;
  std::size_t uv_pitch = 0;
  int width = 0;
  int height = 0;
};

// The Y'CbCr matrix and range. The CPU video path (video/ffmpeg_util.cc, video_writer.cc) uses
// the stream's tagged matrix, else BT.709 from 720 rows up and BT.601 below, limited range
// (Y 16..235, Cb/Cr 16..240) unless tagged full; RGB is always full range 0..255.
enum class YuvMatrix { kBt601, kBt709 };
struct YuvFormat {
  YuvMatrix matrix = YuvMatrix::kBt709;
  bool full_range = false;
};
// The CPU path's choice for an untagged stream of `height` rows.
YuvFormat default_yuv_format(int height);

// dst = warp_affine(src, src_to_dst, dst.width, dst.height, border) of transform.h (bilinear,
// OpenCV's pixel centres, kConstant fills 0); src and dst have the same channel count.
Status warp_affine(const DeviceImage& src, const Affine& src_to_dst, const DeviceImage& dst, Border border,
                   CUstream_st* stream);
Status warp_affine(const DeviceImageF& src, const Affine& src_to_dst, const DeviceImageF& dst, Border border,
                   CUstream_st* stream);

// Writes only the pixels of `region` (clipped to dst), as transform.h's warp_affine_into.
Status warp_affine_into(const DeviceImage& src, const Affine& src_to_dst, const DeviceImage& dst,
                        const Rect& region, Border border, CUstream_st* stream);
Status warp_affine_into(const DeviceImageF& src, const Affine& src_to_dst, const DeviceImageF& dst,
                        const Rect& region, Border border, CUstream_st* stream);

// dst = resize(src, dst.width, dst.height, interp) of transform.h: kBilinear (half-pixel
// centres), kArea (box average when shrinking, bilinear along an enlarging axis), kNearest.
// src and dst must not overlap.
Status resize(const DeviceImage& src, const DeviceImage& dst, Interp interp, CUstream_st* stream);
Status resize(const DeviceImageF& src, const DeviceImageF& dst, Interp interp, CUstream_st* stream);

// gaussian_blur(image, sigma) of filter.h in place (radius ceil(3σ) ≤ kMaxBlurRadius,
// reflect-101): the horizontal pass goes to `scratch` (image's size and channels, not
// overlapping it), the vertical pass back into image. σ ≤ 0 does nothing.
inline constexpr int kMaxBlurRadius = 512;
Status gaussian_blur(const DeviceImageF& image, float sigma, const DeviceImageF& scratch, CUstream_st* stream);

// alpha_blend(dst, src, mask, x, y) of blend.h: the patch src (dst's channels) pasted at (x, y)
// under its 1-channel mask (src's size, clamped to [0, 1]): dst = dst·(1−m) + src·m, rounded.
// Parts outside dst are skipped.
Status alpha_blend(const DeviceImage& dst, const DeviceImage& src, const DeviceImageF& mask, int x, int y,
                   CUstream_st* stream);

// NV12 → RGB (3 channels, the NV12 size): each chroma sample serves its 2×2 block; results
// rounded and clamped to 0..255.
Status nv12_to_rgb(const Nv12View& nv12, const DeviceImage& rgb, YuvFormat format, CUstream_st* stream);
// RGB (3 channels) → NV12 of its size: Y per pixel; U, V from the mean RGB of each 2×2 block
// (the pixels of it inside the image).
Status rgb_to_nv12(const DeviceImage& rgb, const Nv12View& nv12, YuvFormat format, CUstream_st* stream);

// ---- face model I/O and paste-back ----------------------------------------------------------------

// A model input's normalisation, per channel c of a uint8 image (at most kMaxPlanarChannels):
//   (v · pre_scale − offset[c]) · scale[c]
// face/model_input.h's image_to_nchw(image, o, s): pre_scale 1, offset o, scale s (bit-identical);
// the FaceFusion swappers' (v/255 − mean[c]) / std[c]: pre_scale 1/255, offset mean, scale 1/std
// (face_swapper_target_tensor within float rounding: it divides by 255 where this multiplies).
inline constexpr int kMaxPlanarChannels = 3;
struct ToPlanar {
  float pre_scale = 1;
  float offset[kMaxPlanarChannels] = {0, 0, 0};
  float scale[kMaxPlanarChannels] = {1, 1, 1};
};
// A model output's way back to 0..255, per channel c:
//   (clamp(v · gain[c] + bias[c], low, high) − low) / (high − low) · 255, rounded half to even
//   when `round`.
// face/model_input.h's nchw_to_image(t, lo, hi, round): gain 1, bias 0 (bit-identical); the
// swappers' face_swapper_output_to_crop: gain std, bias mean (or 1, 0), low 0, high 1, no rounding
// (bit-identical). Needs low < high.
struct FromPlanar {
  float gain[kMaxPlanarChannels] = {1, 1, 1};
  float bias[kMaxPlanarChannels] = {0, 0, 0};
  float low = 0, high = 1;
  bool round = false;
};

// src (1 to kMaxPlanarChannels channels) → dst[c·H·W + y·W + x] = ToPlanar(src(x, y, c)): a model
// input [C, H, W] float32 without the batch dimension, channels in src's order. dst: H·W·C
// contiguous floats in device memory, not overlapping src.
Status planar_from_image(const DeviceImage& src, const ToPlanar& map, float* dst, CUstream_st* stream);
// The same from a float image (e.g. a swapped crop, 0..255): (v · pre_scale − offset[c]) · scale[c].
Status planar_from_image(const DeviceImageF& src, const ToPlanar& map, float* dst, CUstream_st* stream);

// src [C, H, W] float32 (dst's size and channels, 1 to kMaxPlanarChannels; contiguous device
// memory, not overlapping dst) → dst(x, y, c) = FromPlanar(src[c·H·W + y·W + x]).
Status image_from_planar(const float* src, const FromPlanar& map, const DeviceImageF& dst, CUstream_st* stream);

// face/paste_back.h's paste_back(frame, crop, mask, frame_to_crop) followed by face/enhancer.h's
// face_enhancer_blend(frame, pasted, B, region) with blend = B / 100, in one pass over `region`:
// per pixel m = clamp(mask warped with zero borders, 0, 1), p = crop warped with replicated borders
//   (bilinear, through the same dst → src map as paste_back's warp_affine_into),
//   v = uint8(truncate(clamp(frame·(1 − m) + p·m, 0, 255))),
//   frame = clamp(round-half-even(frame·(1 − blend) + v·blend), 0, 255).
// blend in [0, 1]: 1 is paste_back alone (v exactly), 0 leaves the frame as it is.
// region: paste_rect(frame.width, frame.height, crop.width, crop.height, frame_to_crop) of
// face/paste_back.h (the imaging layer does not depend on face/); it is clipped to the frame and
// pixels outside it are untouched. Another rectangle works but shifts paste_back's rounding.
// crop: the frame's channel count (at most kMaxPasteChannels), values 0..255; mask: 1 channel,
// crop-sized. Neither may overlap frame. A singular frame_to_crop writes nothing, as paste_back.
// With region = paste_rect the result equals paste_back's (then face_enhancer_blend's) within
// one uint8 level; the same float and double operations run in the same order, so nearly every
// value is exactly equal (the GPU test asks for ≥ 99.9%).
inline constexpr int kMaxPasteChannels = 4;
Status paste_back(const DeviceImage& frame, const DeviceImageF& crop, const DeviceImageF& mask,
                  const Affine& frame_to_crop, const Rect& region, float blend, CUstream_st* stream);

// ---- FaceFusion's content masks (face/device_masks.h) ----------------------------------------------

// dst = face/face_masker.h's resize_linear_opencv(src, dst.width, dst.height), bit-identical:
// cv2.resize INTER_LINEAR on uint8 in OpenCV's fixed point (11-bit weights from half-pixel
// centres, rows as 2048× integers, scaled down by 2⁴ and 2¹⁶ and rounded). src and dst have the
// same channel count and do not overlap.
Status resize_linear_fixed(const DeviceImage& src, const DeviceImage& dst, CUstream_st* stream);

// src (1 to kMaxPlanarChannels channels) → an NHWC model input without the batch dimension:
// dst[(y·W + x)·C + c] = (src(x, y, c') − offset) · scale, c' = C − 1 − c when reverse_channels
// (RGB → BGR), else c. face/model_input.h's image_to_nhwc(image, offset, scale) of the image with
// its channels reversed, bit-identical. dst: W·H·C contiguous floats, not overlapping src.
Status interleaved_from_image(const DeviceImage& src, float offset, float scale, bool reverse_channels, float* dst,
                              CUstream_st* stream);

// A face parser's class scores [C, H, W] float32 (contiguous, dst's size) → dst(x, y) = 1 when the
// class of the highest score at (x, y) is chosen (bit k of `chosen` for class k), else 0; ties go
// to the lowest class (numpy's argmax), classes from 64 on are never chosen. dst: 1 channel.
Status chosen_class_mask(const float* scores, int classes, std::uint64_t chosen, const DeviceImageF& dst,
                         CUstream_st* stream);

// values[i] = other[i] < values[i] ? other[i] : values[i] (std::min(values[i], other[i])), i < count.
Status minimum_into(float* values, const float* other, std::size_t count, CUstream_st* stream);
// values[i] = value, i < count.
Status fill(float* values, std::size_t count, float value, CUstream_st* stream);

// values[i] = (std::clamp(values[i], low, high) − offset) · scale, i < count: a clip to [0, 1]
// (the defaults, exact), or FaceFusion's soft threshold's last step (0.5, 1, 0.5, 2). Needs
// low ≤ high.
struct ClampMap {
  float low = 0, high = 1;
  float offset = 0, scale = 1;
};
Status clamp_map(float* values, std::size_t count, const ClampMap& map, CUstream_st* stream);

// A separable blur of a 1-channel image in place with the given odd number of taps (at most
// kMaxBlurTaps) centred on the pixel, reflect-101 borders, sums in double: each row into `scratch`
// (image's size, not overlapping it) as floats, then each column of scratch back into image.
// With face/paste_back.h's gaussian_taps_opencv(σ) it is gaussian_blur_opencv(image, σ),
// bit-identical (the same double products and sums in the same order).
inline constexpr int kMaxBlurTaps = 127;
struct BlurTaps {
  int count = 0;
  double weight[kMaxBlurTaps] = {};
};
Status blur_with_taps(const DeviceImageF& image, const BlurTaps& taps, const DeviceImageF& scratch,
                      CUstream_st* stream);

}  // namespace fswap::cuda_imaging
