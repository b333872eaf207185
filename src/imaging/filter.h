// Filters and colour: Gaussian blur, colour-space conversion, polygon masks.
//
//   ImageF mask(w, h, 1);
//   fill_polygon(mask, convex_hull(points), 1.0f);
//   gaussian_blur(mask, 8.0f);
#pragma once

#include <vector>

#include "imaging/geometry.h"
#include "imaging/image.h"

namespace fswap {

// Separable Gaussian blur in place, any channel count; kernel radius ceil(3σ), reflect-101
// borders (OpenCV's default). σ ≤ 0 does nothing.
void gaussian_blur(ImageF& image, float sigma);

// BT.601 luma of an RGB image, 1 channel, rounded.
Image rgb_to_gray(const Image& rgb);

// RGB (0..255) ↔ CIE L*a*b* (D65; L in 0..100, a/b roughly −128..127) as floats.
ImageF rgb_to_lab(const Image& rgb);
Image lab_to_rgb(const ImageF& lab);

// Sets every pixel whose centre is inside the polygon (even-odd rule) to value, all channels.
void fill_polygon(ImageF& image, const std::vector<Point2f>& polygon, float value);

}  // namespace fswap
