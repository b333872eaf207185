// Image → tensor conversions shared by the face models.
//
//   Tensor t = image_to_nchw(resized, 127.f, 1 / 128.f);   // (v − 127) / 128, planar RGB
#pragma once

#include "core/tensor.h"
#include "imaging/image.h"

namespace fswap {

// [1, C, H, W] float32 with value (v − offset) · scale, channels in the image's order.
Tensor image_to_nchw(const Image& image, float offset, float scale);
// [1, H, W, C] float32 with value (v − offset) · scale.
Tensor image_to_nhwc(const Image& image, float offset, float scale);
// The way back for image-to-image models: [1, 3, H, W] float32 → 3-channel ImageF in 0..255,
// value (clamp(v, low, high) − low) / (high − low) · 255, rounded half to even when `round`.
ImageF nchw_to_image(const Tensor& output, float low, float high, bool round);

}  // namespace fswap
