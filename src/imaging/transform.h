// Resampling: affine warps, piecewise-affine (triangle) warps and resizing, on CPU.
// All functions are thread-safe on distinct outputs and parallelise over rows internally.
//
//   Image crop = warp_affine(frame, frame_to_crop, 112, 112, Border::kReplicate);
//   warp_affine_into(crop, crop_to_frame, frame_layer, paste_rect, Border::kReplicate);
#pragma once

#include <array>

#include "imaging/geometry.h"
#include "imaging/image.h"

namespace fswap {

enum class Border { kConstant, kReplicate };  // kConstant fills with 0
enum class Interp { kNearest, kBilinear, kArea };

// dst(x, y) = src(M⁻¹ · (x, y)), bilinear; M maps src coordinates to dst coordinates.
// Pixel centres are at integer coordinates (OpenCV's warpAffine convention).
// A singular M yields zeros.
template <class T>
ImageT<T> warp_affine(const ImageT<T>& src, const Affine& src_to_dst, int dst_width, int dst_height,
                      Border border = Border::kReplicate);

// Like warp_affine but writes only the pixels of `region` (clipped to dst) into an existing dst
// with the same channel count; the rest of dst is untouched.
template <class T>
void warp_affine_into(const ImageT<T>& src, const Affine& src_to_dst, ImageT<T>& dst, const Rect& region,
                      Border border = Border::kReplicate);

// One row of a warp, for callers that consume it at once (face/paste_back.cc blends each row into
// the frame): dst pixels [x_begin, x_end) of row y into out ((x_end − x_begin) × src.channels
// values), exactly as warp_affine_into writes them, given dst_to_src = src_to_dst.inverse().
template <class T>
void warp_affine_row(const ImageT<T>& src, const Affine& dst_to_src, int y, int x_begin, int x_end, T* out,
                     Border border = Border::kReplicate);

// Piecewise-affine warp of one triangle: every dst pixel whose centre lies inside dst_tri
// (top-left fill rule, so adjacent triangles cover each pixel exactly once) is sampled
// bilinearly from src (replicated borders) through the affine map dst_tri → src_tri. Pixels
// outside dst are skipped. Vertices are snapped to 1/256 pixel for the coverage test.
template <class T>
void warp_triangle(const ImageT<T>& src, const std::array<Point2f, 3>& src_tri, ImageT<T>& dst,
                   const std::array<Point2f, 3>& dst_tri);

// Resize to width × height. kBilinear uses half-pixel centres (OpenCV INTER_LINEAR);
// kArea averages source pixels (for shrinking, like INTER_AREA; bilinear along an axis that
// enlarges); kNearest takes the source pixel under the destination pixel's centre
// (OpenCV INTER_NEAREST_EXACT).
template <class T>
ImageT<T> resize(const ImageT<T>& src, int width, int height, Interp interp = Interp::kBilinear);

}  // namespace fswap
