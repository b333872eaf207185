// CUDA twins of the CPU imaging functions (warp, resize, blur, blend) plus NV12 ↔ RGB, so frames
// can stay on the GPU between pipeline stages. Each function checks its arguments, enqueues its
// kernels on `stream` and returns; none synchronises or allocates. The results equal the CPU
// functions' (transform.h, filter.h, blend.h) within one uint8 level or 1e-4 for floats: the
// kernels evaluate the same formulas in the same order (no fused multiply-adds).
//
//   DeviceImage frame{d_frame, 1920, 1080, 3, pitch};       // device memory, pitch in bytes
//   DeviceImage crop{d_crop, 128, 128, 3, 128 * 3};
//   FSWAP_RETURN_IF_ERROR(cuda_imaging::warp_affine(frame, frame_to_crop, crop, Border::kReplicate, stream));
//   FSWAP_RETURN_IF_ERROR(cuda_imaging::alpha_blend(frame, face, mask, x, y, stream));
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

}  // namespace fswap::cuda_imaging
