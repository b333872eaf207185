// FaceFusion's five-point alignment templates (face_helper.py WARP_TEMPLATE_SET;
// reference/facefusion.md §2.1), in the unit square: multiply by the crop size. Points: left
// eye, right eye, nose tip, left and right mouth corners. arcface_112_v2 is
// kFaceFusionArcface112V2 (face/recognizer_arcface.h).
//
//   const Affine m = align_to_template(face.landmarks5, kFaceFusionArcface128, 256.f);
#pragma once

#include <array>

#include "imaging/geometry.h"

namespace fswap {

using FaceTemplate = std::array<Point2f, 5>;

extern const FaceTemplate kFaceFusionArcface112V1;
// insightface's arcface_dst shifted +8 px at 128 (norm_crop2).
extern const FaceTemplate kFaceFusionArcface128;
extern const FaceTemplate kFaceFusionFfhq512;
extern const FaceTemplate kFaceFusionMtcnn512;

}  // namespace fswap
