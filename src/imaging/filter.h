// Filters and colour: Gaussian blur, colour-space conversion, CLAHE, polygon masks.
//
//   ImageF mask(w, h, 1);
//   fill_polygon(mask, convex_hull(points), 1.0f);
//   gaussian_blur(mask, 8.0f);
//   Image even = clahe(gray, 2.0, 8, 8);   // OpenCV's createCLAHE(2)->apply(gray)
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
// The L of rgb_to_lab on OpenCV's 8-bit scale, L·255/100 rounded, 1 channel; several times cheaper
// than rgb_to_lab (no a, b; no cube roots).
Image rgb_to_lab_lightness8(const Image& rgb);

// Contrast-limited adaptive histogram equalisation of a 1-channel 8-bit image, as OpenCV's
// createCLAHE(clip_limit, {tiles_x, tiles_y})->apply (OpenCV's defaults: 40, 8×8):
// - a size that is not a multiple of the grid is padded at the bottom and right (reflect-101) by
//   tiles − size mod tiles in both directions, the tile size taken from the padded image;
// - each tile's 256-bin histogram is clipped at max(1, int(clip_limit · tile pixels / 256)), the
//   clipped count spread over all bins evenly and its remainder one bin at a time from bin 0 at a
//   step of max(1, 256 / remainder); clip_limit ≤ 0: no clipping;
// - a tile maps value v to its clipped cumulative count up to v · 255 / tile pixels, rounded;
// - each pixel is the bilinear blend of the maps of the four tiles whose centres surround it
//   (beyond the outer centres the nearest tiles), rounded.
// Needs tiles_x, tiles_y ≥ 1 and an image at least as large as the grid.
Image clahe(const Image& gray, double clip_limit, int tiles_x, int tiles_y);

// Sets every pixel whose centre is inside the polygon (even-odd rule) to value, all channels.
void fill_polygon(ImageF& image, const std::vector<Point2f>& polygon, float value);

}  // namespace fswap
