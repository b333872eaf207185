// The default face swapper: classical, landmark-driven (no learned weights).
//
//   FSWAP_ASSIGN_OR_RETURN(auto swapper, ClassicalSwapper::create(source_image, source_face));
//   swapper.swap(frame, target_face, {}, &ledger);   // in place
//
// Steps per target face, all inside a region of interest around the face:
//   1. mesh   — a Delaunay mesh over the source's 68 landmarks plus 8 boundary points, built once;
//   2. warp   — each mesh triangle is warped piecewise-affinely onto the target's geometry;
//   3. colour — Reinhard transfer (mean/std per L*a*b* channel) of the warped face onto the
//               target's colours, measured inside the face mask;
//   4. blend  — a feathered landmark-hull mask (the target's open mouth cut out, so its mouth
//               interior stays) and a Laplacian-pyramid (multi-band) blend.
// Records "swap" (mesh warp + colour) and "blend" time in the ledger. swap() is const and
// thread-safe for distinct frames.
#pragma once

#include <vector>

#include "core/status.h"
#include "core/time_ledger.h"
#include "face/face.h"
#include "imaging/image.h"

namespace fswap {

struct SwapOptions {
  float mask_blur = 0.3f;       // --face-mask-blur 0..1: feather width as a fraction of face size
  float colour_transfer = 1.f;  // 0 = keep the source's colours, 1 = match the target's fully
  bool keep_mouth = true;       // keep the target's open mouth interior
  int blend_levels = 4;         // multi-band pyramid levels
};

class ClassicalSwapper {
 public:
  // The source face must have landmarks. kNoFace if the face is too small to use (< 16 px).
  static Result<ClassicalSwapper> create(const Image& source_image, const Face& source_face);

  // Replaces the target face in frame. Target must have landmarks; faces partly outside the
  // frame are handled (the region is clipped).
  void swap(Image& frame, const Face& target, const SwapOptions& options, TimeLedger* ledger = nullptr) const;

 private:
  struct SourceLevel {
    Image image;
    float scale = 1;              // this level's pixels per source pixel
    std::vector<Point2f> points;  // the mesh vertices in this level's pixels
  };
  ClassicalSwapper() = default;

  // Mesh vertices: 68 landmarks then 8 boundary points, in source pixels.
  std::vector<Point2f> source_points_;
  std::vector<Triangle> mesh_;
  std::vector<SourceLevel> levels_;  // the source image halved until the face is small
  float source_face_size_ = 0;
};

// The 8 boundary vertices around a face's landmarks: corners and edge midpoints of the
// landmark box grown by `margin` × its size on each side.
std::vector<Point2f> face_boundary_points(const std::array<Point2f, 68>& landmarks, float margin);

// Reinhard colour transfer in L*a*b*: shifts and scales each channel of `image` inside the
// mask (weight > 0.5) so its mean/std match `reference` inside the same mask. Both images are
// the same size, 3 channels.
void transfer_colour(Image& image, const Image& reference, const ImageF& mask, float strength);

}  // namespace fswap
