// FaceFusion's box mask and paste-back (face_masker.py::create_box_mask,
// face_helper.py::paste_back; reference/facefusion.md §2.5), on CPU.
//
//   ImageF mask = create_box_mask(128, 128, /*face_mask_blur=*/0.3f, {0, 0, 0, 0});
//   paste_back(frame, swapped_crop, mask, frame_to_crop);   // frame changes only inside the
//                                                            // crop's bounding rectangle
//
// Thread-safe on distinct frames.
#pragma once

#include <array>
#include <vector>

#include "imaging/geometry.h"
#include "imaging/image.h"

namespace fswap {

// --face-mask-padding: top, right, bottom, left, in percent of the crop size (FaceFusion's order).
using FaceMaskPadding = std::array<float, 4>;

// FaceFusion's box mask for a width × height crop, 1 channel in [0, 1]:
//   blur_amount = int(width · 0.5 · face_mask_blur), blur_area = max(blur_amount / 2, 1);
//   ones, with max(blur_area, int(size · pad% / 100)) rows/columns zeroed on each edge
//   (top/bottom use the height, left/right the width);
//   then, when blur_amount > 0, cv2.GaussianBlur(σ = 0.25 · blur_amount) as OpenCV does it for
//   float images: kernel size round(8σ + 1) | 1, reflect-101 borders.
// face_mask_blur: 0..1 (FaceFusion's default 0.3).
ImageF create_box_mask(int width, int height, float face_mask_blur, const FaceMaskPadding& padding);

// cv2.GaussianBlur(image, (0, 0), sigma) on a 1-channel float image as OpenCV computes it: kernel
// size round(8σ + 1) | 1, normalised Gaussian taps, reflect-101 borders, separable.
void gaussian_blur_opencv(ImageF& image, double sigma);
// Its taps: round(8σ + 1) | 1 of them, exp(−x²/2σ²) for x from −radius to radius, normalised to
// sum 1, in double (the device blur takes the same numbers: face/device_masks.h).
std::vector<double> gaussian_taps_opencv(double sigma);

// The sub-rectangle of the frame that paste_back writes: the crop's four corners (0,0), (w,0),
// (w,h), (0,h) mapped to the frame by the inverse of frame_to_crop, floor of the minimum and ceil
// of the maximum, clipped to [0, frame size]. Empty when frame_to_crop is singular or the crop
// falls outside the frame.
Rect paste_rect(int frame_width, int frame_height, int crop_width, int crop_height, const Affine& frame_to_crop);

// The sub-rectangle of the frame that a face step with this crop touches: paste_rect (where its
// paste-back writes) grown by kCropTapMargin pixels on every side, clipped to the frame. The
// crop's bilinear taps lie inside: each crop pixel samples the frame inside the crop's
// footprint, its second tap up to one pixel past paste_rect (the second pixel of margin is
// slack); replicated borders clamp taps outside the frame onto its edge, inside the rectangle.
// Empty when paste_rect is (the step then writes nothing). Usage: face/face_region.h.
inline constexpr int kCropTapMargin = 2;
Rect crop_step_rect(int frame_width, int frame_height, int crop_width, int crop_height, const Affine& frame_to_crop);

// Pastes `crop` (values 0..255 as float, the frame's channel order, as FaceFusion's swappers give
// it before any rounding) back into `frame` under `mask` (crop-sized, 1 channel):
//   inside paste_rect only, mask warped with zero borders and clipped to [0, 1], crop warped with
//   replicated borders (both bilinear), then frame = frame·(1 − m) + crop·m in float, converted
//   to uint8 by truncation as numpy's astype(uint8) does (not rounding).
// Pixels outside paste_rect are untouched. frame_to_crop maps frame pixels to crop pixels.
void paste_back(Image& frame, const ImageF& crop, const ImageF& mask, const Affine& frame_to_crop);

}  // namespace fswap
