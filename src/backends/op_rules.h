// Op rules shared by every backend's kernels: pure functions that resolve an op's attributes and
// shapes (axes, slice windows, convolution and pool windows, matrix product dims, resize modes)
// into plain numbers. No tensor data is read and no device code lives here, so the CPU kernels
// and the CUDA kernels' host side call the same rules and agree by construction.
//
//   FSWAP_ASSIGN_OR_RETURN(StridedRead r, slice_read("Slice", x.shape, y.shape, starts, ends, axes, steps));
//   strided_copy(esize, y.data, r.shape, x_bytes + r.offset * esize, r.strides);
//
// Errors: `who` is the op as the calling backend's messages name it ("Slice" on the CPU,
// "Slice on CUDA" where the CUDA kernel says so). Inconsistent shapes or attributes give
// kInvalidInput "<who>: <what>"; values no kernel takes give kUnsupported "<who>: <what>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/op.h"
#include "core/status.h"
#include "core/tensor.h"

namespace fswap {

// ---- axes and strides ----

// Axis in [-rank, rank) to [0, rank); -1 when out of range.
inline int normalize_axis(std::int64_t axis, std::size_t rank) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) return -1;
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

// normalize_axis, kInvalidInput "<who>: axis <axis> is out of range for rank <rank>" when out of range.
Result<int> checked_axis(std::string_view who, std::int64_t axis, std::size_t rank);

// Row-major element strides of a dense shape.
std::vector<std::int64_t> contiguous_strides(const Shape& shape);

// Reduce*: true for each of rank axes that is reduced: the named axes (any order, negative counting
// from the end), or every axis when axes is empty. Does not apply noop_with_empty_axes.
Result<std::vector<bool>> reduced_axes(std::string_view who, const std::vector<std::int64_t>& axes, std::size_t rank);

// ---- layout ops as strided reads ----

// out (dense, of `shape`) = in[offset + sum idx_d * strides_d], in elements of the input;
// strides may be negative (a reversed slice) or 0 (a repeat).
struct StridedRead {
  Shape shape;
  std::vector<std::int64_t> strides;
  std::int64_t offset = 0;
};

// Transpose of x to y by attribute perm (default: the axes reversed); shape = y.
Result<StridedRead> transpose_read(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& y);

// Slice of x to y. starts/ends/axes/steps as the node gives them (inputs or opset-1 attributes);
// axes empty means 0, 1, ...; steps empty means all 1. Indices clamp as ONNX says; y must be the
// slice's shape, which is `shape`.
Result<StridedRead> slice_read(std::string_view who, const Shape& x, const Shape& y, const std::vector<std::int64_t>& starts,
                               const std::vector<std::int64_t>& ends, std::vector<std::int64_t> axes,
                               std::vector<std::int64_t> steps);

// Tile of x to y by repeats (one per axis): each axis d of y becomes the pair (repeat, index) with
// strides (0, x's stride), so shape has twice x's rank.
Result<StridedRead> tile_read(std::string_view who, const Shape& x, const Shape& y, const std::vector<std::int64_t>& repeats);

// GatherElements: indices have the data's rank and the output's shape, and no larger dim than the
// data off `axis` (already normalised).
Status check_gather_elements(std::string_view who, const Shape& data, const Shape& indices, const Shape& y,
                             std::size_t axis);

// ---- sliding windows: Conv, ConvTranspose, MaxPool, AveragePool ----

// The window attributes for `rank` spatial dims with ONNX's defaults (strides and dilations 1, pads
// and output_padding 0, auto_pad NOTSET); read as given, not checked.
struct WindowAttributes {
  std::vector<std::int64_t> strides, dilations, pads, output_padding;
  std::string auto_pad;
};
WindowAttributes window_attributes(const OpAttributes& attrs, std::size_t rank);

// auto_pad is one of NOTSET, VALID, SAME_UPPER, SAME_LOWER.
bool known_auto_pad(const std::string& auto_pad);

// The sliding-window geometry of Conv and the pools, spatial dims right-aligned into 3
// (a 2-D op has in[0] = out[0] = kernel[0] = 1, stride[0] = dilation[0] = 1, pads 0).
struct WindowGeometry {
  std::int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, kernel[3] = {1, 1, 1};
  std::int64_t stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1};
  std::int64_t pad_begin[3] = {0, 0, 0}, pad_end[3] = {0, 0, 0};
  std::int64_t in_size() const { return in[0] * in[1] * in[2]; }
  std::int64_t out_size() const { return out[0] * out[1] * out[2]; }
  std::int64_t kernel_size() const { return kernel[0] * kernel[1] * kernel[2]; }
};

// Geometry from x = [N, C, spatial...], y = [N, M, spatial...] (already inferred, so SAME_* pads
// come from the output size as ONNX computes them, and ceil_mode is in it), the kernel's spatial
// shape and the attributes strides, dilations, pads and auto_pad. kUnsupported for other than 1 to 3
// spatial dims and for an unknown auto_pad.
Result<WindowGeometry> window_geometry(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& y,
                                       const std::vector<std::int64_t>& kernel);

// MaxPool/AveragePool: window_geometry with the kernel from attribute kernel_shape, which must name
// every spatial dim of x.
Result<WindowGeometry> pool_geometry(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& y);

// Conv: attribute group (default 1) for x = [N, C, ...], w = [M, C/group, ...], y = [N, M, ...]:
// group divides C and M. x, w and y have rank >= 2 (check the window first).
Result<std::int64_t> conv_group(std::string_view who, const OpAttributes& attrs, const Shape& x, const Shape& w,
                                const Shape& y);

// ConvTranspose: attribute group (default 1) for x = [N, C, ...], w = [C, M/group, ...],
// y = [N, M, ...]: group divides C. x, w and y have rank >= 2.
Result<std::int64_t> conv_transpose_group(std::string_view who, const OpAttributes& attrs, const Shape& x,
                                          const Shape& w, const Shape& y);

// ---- InstanceNormalization's style input (backends/op.h) ----

// Where a row of the style S holds the C scales and the C shifts; one row serves every image when
// row_count is 1.
struct StyleRows {
  std::int64_t row_length = 0, row_count = 0, scale_at = 0, shift_at = 0;
};

// S's rows for X's `batch` images of `channels` channels, from attributes style_scale and
// style_shift. kInvalidInput "<who>: style [..] must be [N or 1, K] holding C = .. scales from ..
// and shifts from .." when S is not 2-D, has another row count, or a row is too short.
Result<StyleRows> style_rows(std::string_view who, const OpAttributes& attrs, const Shape& style, std::int64_t batch,
                             std::int64_t channels);

// ---- channels_last: Conv, ConvTranspose, pools and normalisations on [N, H, W, C] tensors ----

// Attribute channels_last (set by the layout pass, runtime/channels_last.h): true when 1 (x is
// [N, H, W, C]), false when absent or 0. kInvalidInput "<who>: channels_last needs a 4-D input,
// got [..]" when it is set on an x of another rank, and for a value other than 0 and 1.
Result<bool> channels_last(std::string_view who, const OpAttributes& attrs, const Shape& x);

// [N, H, W, C] → [N, C, H, W] and back (4-D shapes only). The same permutation takes Conv's NHWC
// weight [M, kH, kW, C/g] to ONNX's [M, C/g, kH, kW], and ConvTranspose's [C, kH, kW, M/g] to
// [C, M/g, kH, kW].
Shape nchw_from_nhwc(const Shape& nhwc);
Shape nhwc_from_nchw(const Shape& nchw);

// ---- matrix products ----

// Gemm: Y [M, N] = alpha * op(A) op(B) + beta * C, op = transpose by transA/transB.
struct GemmGeometry {
  std::int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f, beta = 1.0f;
  bool has_c = false;                      // C is present and beta != 0 (else C is ignored)
  std::int64_t c_rows = 1, c_cols = 1;     // C's dims broadcast to [M, N]: 1 or M, 1 or N
};
// A, B and Y must be 2-D and multiply; c is C's shape, nullptr when C is absent.
Result<GemmGeometry> gemm_geometry(std::string_view who, const OpAttributes& attrs, const Shape& a, const Shape& b,
                                   const Shape& y, const Shape* c);

// MatMul with numpy semantics: a 1-D A is [1, K], a 1-D B is [K, 1]; batch dims broadcast.
struct MatMulGeometry {
  std::int64_t m = 0, k = 0, n = 0;
  std::vector<std::int64_t> batch;               // the broadcast batch dims, outermost first
  std::vector<std::int64_t> stride_a, stride_b;  // per batch dim, in matrices; 0 where broadcast
  std::int64_t count_a = 1, count_b = 1;         // matrices in A and in B
  std::int64_t batches = 1;                      // matrices in Y
};
// y must hold batches * M * N elements; bias (a fused one, nullptr when absent) N values or one.
Result<MatMulGeometry> mat_mul_geometry(std::string_view who, const Shape& a, const Shape& b, const Shape& y,
                                        const Shape* bias);

// The matrix of A and the matrix of B (indices in matrices) that Y's matrix i multiplies, for i < batches.
struct MatrixPair {
  std::int64_t a = 0, b = 0;
};
std::vector<MatrixPair> batch_matrices(const MatMulGeometry& g);

// ---- Resize, Upsample ----

enum class InterpMode { kNearest, kLinear, kCubic };
enum class CoordMode {
  kHalfPixel, kHalfPixelSymmetric, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfHalfPixelForNearest
};
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

// How output coordinates map to input taps; plain data (a CUDA kernel takes it by value).
struct ResizeMode {
  InterpMode interp = InterpMode::kNearest;
  CoordMode coord = CoordMode::kHalfPixel;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  float cubic_a = -0.75f;        // cubic_coeff_a
  bool exclude_outside = false;  // cubic: zero the taps outside the input, renormalise
};

// Resize's attributes mode, cubic_coeff_a, exclude_outside, coordinate_transformation_mode,
// nearest_mode and antialias (1 only with nearest). opset10: the node has inputs (X, scales), whose
// defaults are asymmetric coordinates and floor rounding. kUnsupported for other values.
Result<ResizeMode> resize_mode(std::string_view who, const OpAttributes& attrs, bool opset10);

// Upsample's attribute mode (nearest, linear or bilinear), with asymmetric coordinates and floor rounding.
Result<ResizeMode> upsample_mode(std::string_view who, const OpAttributes& attrs);

// The Resize a channels_last Conv reads its X through (backends/op.h's OpAttributes::input_resize):
// scales resized / X per axis, which the fusion checked are the Resize's own.
struct InputResize {
  ResizeMode mode;
  Shape resized;  // [N, H, W, C]
};
// resized[a] / x[a] per axis, as Resize computes scales from sizes.
std::vector<float> resize_scales(const Shape& x, const Shape& resized);

}  // namespace fswap
