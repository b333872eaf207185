// Resampling: affine warps, piecewise-affine (triangle) warps and resizing, on CPU.
// All functions are thread-safe on distinct outputs and parallelise over rows internally.
//
//   Image crop = warp_affine(frame, frame_to_crop, 112, 112, Border::kReplicate);
//   warp_affine_into(crop, crop_to_frame, frame_layer, paste_rect, Border::kReplicate);
#pragma once

#include <array>
#include <vector>

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

// Piecewise-affine warp of a mesh: for each triangle (indices into both point lists), every dst
// pixel whose centre lies inside its dst triangle (top-left fill rule, so adjacent triangles
// cover each pixel exactly once) is sampled bilinearly from src (replicated borders) through the
// affine map dst triangle → src triangle. Pixels outside dst are skipped; where triangles
// overlap (a folded mesh) the later one wins. Vertices are snapped to 1/256 pixel for the
// coverage test. One pass over dst's rows for the whole mesh.
template <class T>
void warp_mesh(const ImageT<T>& src, const std::vector<Point2f>& src_points, ImageT<T>& dst,
               const std::vector<Point2f>& dst_points, const std::vector<Triangle>& mesh);

// Resize to width × height. kBilinear uses half-pixel centres (OpenCV INTER_LINEAR);
// kArea averages source pixels (for shrinking, like INTER_AREA; bilinear along an axis that
// enlarges); kNearest takes the source pixel under the destination pixel's centre
// (OpenCV INTER_NEAREST_EXACT).
template <class T>
ImageT<T> resize(const ImageT<T>& src, int width, int height, Interp interp = Interp::kBilinear);

}  // namespace fswap
