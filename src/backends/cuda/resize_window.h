// Internal to the CUDA backend: a window of an NHWC resize, for a Conv whose input resize was fused
// into it (OpAttributes::input_resize, backends/op.h): conv.cc stages each band of the resized
// input, its zero padding included, with this and convolves it; layout.cu implements it with
// Resize's own kernel, so a staged pixel is bit-identical to the unfused Resize's.
//
//   // Rows 8..15 of image 0 of x resized to r.resized, with one zero column on each side:
//   FSWAP_RETURN_IF_ERROR(resize_window(dtype, x.data, x.shape, r, {.rows = 8, .cols = w + 2, .row0 = 8, .col0 = -1},
//                                       0, staging, stream, "Conv"));
#pragma once

#include <cstdint>

#include "backends/op_rules.h"
#include "core/status.h"
#include "core/tensor.h"

struct CUstream_st;

namespace fswap::cuda {

// rows × cols pixels of a resized image, from (row0, col0) on; pixels outside the image are 0.
struct NhwcWindow {
  std::int64_t rows = 0, cols = 0;
  std::int64_t row0 = 0, col0 = 0;  // negative: zero rows or columns before the image's first
};

// dst = [window.rows, window.cols, C] ← image `image` of x = [N, h, w, C] resized to resize.resized
// (scales resized / x). kInvalidInput naming `op` when the shapes disagree.
Status resize_window(DType dtype, const void* x, const Shape& x_nhwc, const InputResize& resize,
                     const NhwcWindow& window, std::int64_t image, void* dst, CUstream_st* stream, const char* op);

}  // namespace fswap::cuda
