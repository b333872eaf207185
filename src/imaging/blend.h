// Blending a foreground into a background under a soft mask.
//
//   alpha_blend(frame, face_patch, patch_mask, roi.x, roi.y);   // frame = frame·(1−m) + patch·m
//   ImageF out = multiband_blend(background, foreground, mask, 5);
#pragma once

#include "imaging/image.h"

namespace fswap {

// Pastes the patch src at (x, y) of dst under its mask, in place: dst = dst·(1−m) + src·m,
// rounded. src: dst's channel count; mask: src's size, 1 channel, values clamped to [0, 1].
// Parts of the patch outside dst are skipped.
void alpha_blend(Image& dst, const Image& src, const ImageF& mask, int x, int y);

// Laplacian-pyramid (Burt–Adelson) blend: each frequency band is mixed with a Gaussian-
// pyramid level of the mask, so low frequencies blend over a wide seam and fine detail over a
// narrow one. Inputs: same size, background/foreground same channels, mask 1 channel in [0, 1].
// levels ≥ 1 (clamped so the smallest level is at least 4 px).
ImageF multiband_blend(const ImageF& background, const ImageF& foreground, const ImageF& mask, int levels);

// Gaussian pyramid steps (5-tap [1 4 6 4 1]/16 kernel, reflect-101 borders).
ImageF pyr_down(const ImageF& src);                          // ceil(w/2) × ceil(h/2)
// To width × height, each 2·src − 1 or 2·src (so pyr_up(pyr_down(a), a.width, a.height) fits);
// borders as OpenCV's pyrUp (reflect-101 at the start, replicate at the end).
ImageF pyr_up(const ImageF& src, int width, int height);

}  // namespace fswap
